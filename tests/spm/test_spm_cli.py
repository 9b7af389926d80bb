"""SPM command line: synthetic end-to-end, bad inputs, resume, and seeded determinism."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from scipy import ndimage

from common.io import write_png
from common.synthetic import make_synthetic_image
from tests.tooling import load_tool

spm_cli = load_tool("spm")


FAST = ["--no-compile", "--device", "cpu"]


def _out(root):
    return root / "cluster_5_nConv_3"


def _summary(root):
    with open(_out(root) / "summary.csv") as fh:
        return {r["image"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    rng = np.random.default_rng(7)
    image, gland, ring = make_synthetic_image(rng, 160, 208, n_glands=4)
    write_png(root / "images" / "syn_1.png", image)
    return root, gland, ring


def test_synthetic_end_to_end_border_finds_nuclei_rings(synthetic, tmp_path, capsys):
    root, gland, ring = synthetic
    rc = spm_cli.main(["--train_image_path", str(root / "images"), "--output_root", str(tmp_path),
                       "--min_border_pixels", "2000", *FAST])
    assert rc == 0
    assert "1 done, 0 skipped, 0 failed" in capsys.readouterr().out
    out = _out(tmp_path)
    proposal = cv2.imread(str(out / "gland_proposal" / "syn_1.png"), cv2.IMREAD_UNCHANGED)
    border = cv2.imread(str(out / "border_proposal" / "syn_1.png"), cv2.IMREAD_UNCHANGED) > 0
    assert proposal.shape == ring.shape and set(np.unique(proposal)) <= {0, 1, 2}
    assert cv2.imread(str(out / "overlay" / "syn_1.png")).shape == (*ring.shape, 3)
    assert cv2.imread(str(out / "cluster_label" / "syn_1.png")).shape == (*ring.shape, 3)
    # Away from the image edge (CSNet's zero padding makes the outermost pixels a dark cluster
    # of their own, in the original too), the darkest large cluster lies on the epithelial
    # rings and covers them.
    inner = np.zeros_like(ring)
    inner[4:-4, 4:-4] = True
    near_ring = ndimage.binary_dilation(ring, iterations=2)
    assert (border & near_ring & inner).sum() / (border & inner).sum() > 0.8
    assert (border & ring).sum() / ring.sum() > 0.9
    # the gland region (border + interior) covers the true glands (lumens filled)
    pred = proposal > 0
    assert (pred & gland).sum() / gland.sum() > 0.95
    assert (pred & gland & inner).sum() / ((pred | gland) & inner).sum() > 0.5
    row = _summary(tmp_path)["syn_1"]
    assert row["status"] == "ok" and float(row["border_fraction"]) == pytest.approx(border.mean(), abs=1e-4)


def _tiny_folder(root, rng):
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    write_png(root / "a_good.png", img)
    cv2.imwrite(str(root / "b_gray.bmp"), img[:, :, 0])
    (root / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    (root / "d_notes.txt").write_text("not an image")
    write_png(root / "e_tiny.png", img[:2, :2])
    return root


def test_bad_inputs_continue_and_report(tmp_path, rng, capsys):
    images = _tiny_folder(tmp_path / "in", rng)
    out = tmp_path / "out"
    rc = spm_cli.main(["--train_image_path", str(images), "--output_root", str(out), "--maxIter", "2",
                       "--nChannel", "8", "--min_border_pixels", "10", *FAST])
    captured = capsys.readouterr()
    assert rc == 1
    assert "2 done, 0 skipped, 3 failed of 5 files" in captured.out
    err_lines = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 3
    assert any("c_corrupt.png" in ln and "cannot decode" in ln for ln in err_lines)
    assert any("d_notes.txt" in ln and "not an image file type" in ln for ln in err_lines)
    assert any("e_tiny.png" in ln and "smaller than 3x3" in ln for ln in err_lines)
    assert any("b_gray.bmp" in ln and "grayscale" in ln for ln in captured.err.splitlines())
    rows = _summary(out)
    assert {k: v["status"] for k, v in rows.items()} == {
        "a_good": "ok", "b_gray": "ok", "c_corrupt": "failed", "d_notes": "failed", "e_tiny": "failed"}
    assert "grayscale" in rows["b_gray"]["warnings"]
    made = sorted(p.name for p in (_out(out) / "gland_proposal").iterdir())
    assert made == ["a_good.png", "b_gray.png"]  # nothing for failures, no temp files

    # resume: done images are skipped, failures retried, earlier rows kept
    rc = spm_cli.main(["--train_image_path", str(images), "--output_root", str(out), "--maxIter", "2",
                       "--nChannel", "8", "--min_border_pixels", "10", "--skip_existing", *FAST])
    assert rc == 1
    assert "0 done, 2 skipped, 3 failed" in capsys.readouterr().out
    assert _summary(out)["a_good"]["status"] == "ok"


def test_same_seed_same_map(tmp_path, rng):
    images = tmp_path / "in"
    write_png(images / "x.png", rng.integers(0, 256, (32, 40, 3), dtype=np.uint8))
    maps = []
    for seed, name in ((5, "a"), (5, "b"), (6, "c")):
        spm_cli.main(["--train_image_path", str(images), "--output_root", str(tmp_path / name), "--seed", str(seed),
                      "--maxIter", "5", "--nChannel", "16", "--min_border_pixels", "10", *FAST])
        maps.append(cv2.imread(str(_out(tmp_path / name) / "cluster_label" / "x.png")))
    assert np.array_equal(maps[0], maps[1])
    assert not np.array_equal(maps[0], maps[2])


def test_empty_folder_and_unwritable_output(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert spm_cli.main(["--train_image_path", str(tmp_path / "empty"), "--output_root", str(tmp_path / "o")]) == 2
    assert "no files found" in capsys.readouterr().err
    write_png(tmp_path / "in" / "x.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "blocker").write_text("a file where the output folder should go")
    rc = spm_cli.main(["--train_image_path", str(tmp_path / "in"), "--output_root", str(tmp_path / "blocker")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "blocker" in err and len(err.strip().splitlines()) == 1
    assert spm_cli.main(["--train_image_path", str(tmp_path / "missing"), "--output_root", str(tmp_path / "o")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_scale_keeps_full_resolution_output(tmp_path, rng):
    images = tmp_path / "in"
    write_png(images / "x.png", rng.integers(0, 256, (30, 41, 3), dtype=np.uint8))
    rc = spm_cli.main(["--train_image_path", str(images), "--output_root", str(tmp_path / "o"), "--scale", "0.5",
                       "--maxIter", "2", "--nChannel", "8", "--min_border_pixels", "10", *FAST])
    assert rc == 0
    assert cv2.imread(str(_out(tmp_path / "o") / "gland_proposal" / "x.png"), cv2.IMREAD_UNCHANGED).shape == (30, 41)


def test_dist_spm_two_processes_shard_and_merge(tmp_path, rng):
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    images = tmp_path / "in"
    for i in range(3):
        write_png(images / f"img_{i}.png", rng.integers(0, 256, (24, 30, 3), dtype=np.uint8))
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(root / "tools" / "dist_spm.sh"), str(images), str(tmp_path / "out"), "2",
         "--maxIter", "2", "--nChannel", "8", "--min_border_pixels", "10", "--no-compile", "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rank 0/2: 2 done" in proc.stdout and "rank 1/2: 1 done" in proc.stdout
    rows = _summary(tmp_path / "out")
    assert sorted(rows) == ["img_0", "img_1", "img_2"] and all(r["status"] == "ok" for r in rows.values())
    assert not list(_out(tmp_path / "out").glob(".summary.rank*"))  # per-rank parts merged and removed


def test_batch_images_gives_the_maps_of_the_per_image_loop(tmp_path, capsys):
    """--batch_images 2 on the exact path: the two 96x128 images train in one pass (the 80x112 one alone),
    each with its own network, and every map agrees with the one-at-a-time loop on >= 99% of pixels."""
    rng = np.random.default_rng(11)
    for name, (h, w) in {"a": (96, 128), "b": (80, 112), "c": (96, 128)}.items():
        write_png(tmp_path / "images" / f"{name}.png", make_synthetic_image(rng, h, w, n_glands=2)[0])
    common = ["--train_image_path", str(tmp_path / "images"), "--exact", "--device", "cpu", "--nChannel", "32",
              "--maxIter", "8", "--min_border_pixels", "300"]
    assert spm_cli.main([*common, "--output_root", str(tmp_path / "loop")]) == 0
    assert spm_cli.main([*common, "--output_root", str(tmp_path / "batched"), "--batch_images", "2"]) == 0
    assert "3 done, 0 skipped, 0 failed" in capsys.readouterr().out
    for name in "abc":
        loop = cv2.imread(str(_out(tmp_path / "loop") / "gland_proposal" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        batched = cv2.imread(str(_out(tmp_path / "batched") / "gland_proposal" / f"{name}.png"),
                             cv2.IMREAD_UNCHANGED)
        assert (loop == batched).mean() >= 0.99, name


def test_stacked_csnet_is_the_separate_networks():
    """Grouped convolutions and stacked BatchNorm compute each network's own function on its own image."""
    import torch

    from SPM.model import CSNet, StackedCSNet

    torch.manual_seed(0)
    nets = [CSNet(3, 16, 3).train() for _ in range(3)]
    images = [torch.rand(1, 3, 24, 32) for _ in nets]
    stacked = StackedCSNet(nets).train()
    together = stacked.split(stacked(torch.cat(images, dim=1)))
    for i, (net, image) in enumerate(zip(nets, images, strict=True)):
        torch.testing.assert_close(together[i:i + 1], net(image), rtol=1e-4, atol=1e-4)
