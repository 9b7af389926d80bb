"""tools/full_width_rows.sh: the GPU script for the rows closest to the paper's, wired end to end on a
synthetic set with the quarter-width configs and a few iterations (the full-width configs differ only in
width; their backbone checkpoint is checked against the faithful config in tests/msg)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from tests.tooling import ROOT, load_tool

SCRIPT = ROOT / "tools" / "full_width_rows.sh"


def _env(**extra: str) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, **extra}


def test_refuses_a_glas_folder_without_its_splits(tmp_path):
    (tmp_path / "glas" / "train" / "images").mkdir(parents=True)
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "glas"), str(tmp_path / "work")],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "testA/images: no such folder" in lines[0], proc.stderr
    assert not (tmp_path / "work").exists()  # nothing written


def test_four_rows_from_spm_to_the_table(tmp_path):
    make = load_tool("make_synthetic_glas")
    glas = tmp_path / "glas"
    assert make.main([str(glas / "train"), "--num", "2", "--seed", "1"]) == 0
    assert make.main([str(glas / "testA"), "--num", "1", "--seed", "2"]) == 0
    work = tmp_path / "work"
    env = _env(ITERS="2", PRETRAIN_ITERS="1", NPROC_SPM="1",
               SPM_OPTIONS="--maxIter 2 --nChannel 8 --min_border_pixels 10",
               CONFIG="configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py",
               PRETRAIN_CONFIG="configs/selfsup/vicregl_wres38w025_glas-half.py",
               PRETRAIN_OPTIONS="schedule.batch_size=2 schedule.warmup_iters=1",
               EXTRA_OPTIONS="train_dataloader.batch_size=2 train_dataloader.num_workers=0 "
                             "train_dataloader.persistent_workers=False",
               PROTOCOL="--tta-ratios 1")
    proc = subprocess.run(["bash", str(SCRIPT), str(glas), str(work)], capture_output=True, text=True, env=env,
                          timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(work / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["start"], r["variant"]) for r in rows] == [("scratch", "ce"), ("scratch", "msg"),
                                                          ("selfsup", "ce"), ("selfsup", "msg")]
    assert all(r["iters"] == "2" and r["images"] == "1" and 0 <= float(r["mIoU"]) <= 1 for r in rows)
    # the self-supervised rows start from the pretrained backbone, the scratch rows do not
    for start in ("scratch", "selfsup"):
        logs = "".join(p.read_text() for p in (work / f"{start}-msg" / "msg").glob("*/*.log"))
        loaded = f"WideRes38: loaded {work / 'selfsup' / 'backbone.pth'}; missing keys: none; unexpected keys: none"
        assert (loaded in logs) == (start == "selfsup")
