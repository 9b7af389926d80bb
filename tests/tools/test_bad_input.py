"""Bad input as a new user gives it: same-stem inputs, unloadable checkpoints, out-of-range arguments,
non-binary masks, leftovers of interrupted writes, and training/testing input errors. Each must end in
one ``error:`` line and the README's exit code (0 ok, 1 some inputs failed, 2 usage/unusable input)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from common.io import InputError, read_mask, remove_stale_temp_files, write_png
from MSG.compat.safe_globals import check_checkpoint, mmengine_checkpoint_globals
from tests.tooling import load_tool

crop_img_and_gt = load_tool("crop_img_and_gt")
evaluate = load_tool("evaluate")
predict = load_tool("predict")
spm_cli = load_tool("spm")


ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny_mssg_cpu.py"
FAITHFUL = ROOT / "configs" / "pspnet_mssg" / "pspnet_wres38-d8_10k_histo.py"


def _image(rng, h=40, w=48):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---- 1. same stem ------------------------------------------------------------------------------
def test_same_stem_is_refused_before_any_work(tmp_path, rng, capsys):
    import cv2

    images = tmp_path / "in"
    write_png(images / "a.png", _image(rng))
    images.mkdir(exist_ok=True)
    cv2.imwrite(str(images / "a.jpg"), _image(rng))
    out = tmp_path / "spm"
    rc = spm_cli.main(["--train_image_path", str(images), "--output_root", str(out), "--maxIter", "1",
                       "--no-compile", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "a.jpg" in err and "a.png" in err and "overwrite" in err
    assert not list(out.rglob("*.png"))  # nothing written

    proposals = tmp_path / "prop"
    write_png(proposals / "a.png", np.zeros((40, 48), np.uint8))
    rc = crop_img_and_gt.main([str(images), str(proposals), str(tmp_path / "patches"), "--crop_size", "32"])
    err = capsys.readouterr().err
    assert rc == 2 and "a.jpg" in err and "a.png" in err and not (tmp_path / "patches").exists()

    rc = predict.main([str(TINY), str(tmp_path / "none.pth"), str(images), "--out", str(tmp_path / "pred")])
    assert rc == 2 and "overwrite" in capsys.readouterr().err  # refused before the checkpoint is even read

    from MSG.engine.preflight import check_test_inputs

    (tmp_path / "masks").mkdir()
    cfg = Config.fromfile(str(TINY))
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    cfg.test_dataloader.dataset.data_prefix = dict(img_path="in", seg_map_path="masks")
    with pytest.raises(InputError, match="overwrite"):  # tools/test.py --out names predictions by stem
        check_test_inputs(cfg, str(tmp_path / "none.pth"))


# ---- 2. checkpoints ----------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def bad_checkpoints(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint at all")
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "x": _Evil()}, evil)
    return garbage, evil


def test_unloadable_checkpoint_is_one_line_exit_2(bad_checkpoints, tmp_path, capsys):
    convert_checkpoint = load_tool("convert_checkpoint")

    for bad in bad_checkpoints:
        with pytest.raises(InputError, match="not a loadable checkpoint"):
            check_checkpoint(bad)
        img = tmp_path / "img"
        write_png(img / "x.png", np.zeros((20, 20, 3), np.uint8))
        assert predict.main([str(TINY), str(bad), str(img), "--out", str(tmp_path / "pred")]) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith(f"error: {bad}: not a loadable checkpoint (")
        assert "weights_only" not in err and "Traceback" not in err
        assert convert_checkpoint.main([str(bad), str(tmp_path / "out.pth")]) == 2
        assert f"error: {bad}: not a loadable checkpoint (" in capsys.readouterr().err
    with pytest.raises(InputError, match="outside the allow-list"):
        check_checkpoint(bad_checkpoints[1])


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / name), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_training_and_testing_input_errors_are_one_line(bad_checkpoints, tmp_path):
    garbage = bad_checkpoints[0]
    for folder in ("images", "proposals", "masks"):
        (tmp_path / folder).mkdir()
    missing_data = [f"train_dataloader.dataset.data_root={tmp_path / 'nowhere'}"]
    runs = {
        "train, no patches": _tool("train.py", str(TINY), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                                   *missing_data),
        "train, bad load_from": _tool("train.py", str(TINY), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                                      f"train_dataloader.dataset.data_root={tmp_path}",
                                      f"val_dataloader.dataset.data_root={tmp_path}", f"load_from={garbage}"),
        "train, no pretrained weights": _tool("train.py", str(FAITHFUL), "--work-dir", str(tmp_path / "w"),
                                              "--cfg-options", f"train_dataloader.dataset.data_root={tmp_path}",
                                              f"val_dataloader.dataset.data_root={tmp_path}"),
        "train, no testA": _tool("train.py", str(TINY), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                                 f"train_dataloader.dataset.data_root={tmp_path}",
                                 f"val_dataloader.dataset.data_root={tmp_path / 'nowhere'}"),
        "test, bad checkpoint": _tool("test.py", str(TINY), str(garbage), "--cfg-options",
                                      f"test_dataloader.dataset.data_root={tmp_path}"),
        "test, no data": _tool("test.py", str(TINY), str(garbage), "--cfg-options",
                               f"test_dataloader.dataset.data_root={tmp_path / 'nowhere'}"),
    }
    expected = {"train, no patches": "training data folder not found",
                "train, no testA": "validation data folder not found",
                "train, bad load_from": "not a loadable checkpoint",
                "train, no pretrained weights": "pretrained backbone weights not found",
                "test, bad checkpoint": "not a loadable checkpoint", "test, no data": "test data folder not found"}
    for name, proc in runs.items():
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        assert last.startswith("error: ") and expected[name] in last, (name, last)
        assert "Traceback" not in proc.stderr, name


# ---- 3. argument ranges ------------------------------------------------------------------------
@pytest.mark.parametrize("flag,value", [("--cluster_num", "1"), ("--cluster_num", "0"), ("--nConv", "0"),
                                        ("--nChannel", "0"), ("--maxIter", "0"), ("--min_border_pixels", "-1"),
                                        ("--hole_area", "-5"), ("--nConv", "two")])
def test_spm_argument_ranges_are_usage_errors(tmp_path, flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        spm_cli.main(["--train_image_path", str(tmp_path), flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--stride", "--crop_size"])
def test_crop_argument_ranges_are_usage_errors(tmp_path, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        crop_img_and_gt.main([str(tmp_path), str(tmp_path), str(tmp_path / "o"), flag, "0"])
    assert exc.value.code == 2 and "must be >= 1" in capsys.readouterr().err


# ---- 4. masks that are not binary ------------------------------------------------------------------
def test_soft_or_rgb_maps_are_refused_unless_thresholded(tmp_path, capsys):
    eval_proposals = load_tool("eval_proposals")

    gt = np.zeros((10, 10), np.uint8)
    gt[:5] = 255
    write_png(tmp_path / "gt" / "x.png", gt)
    soft = np.linspace(0, 255, 100).reshape(10, 10).astype(np.uint8)
    write_png(tmp_path / "soft" / "x.png", soft)
    for tool in (evaluate, eval_proposals):
        assert tool.main([str(tmp_path / "soft"), str(tmp_path / "gt")]) == 2
        err = capsys.readouterr().err
        assert "soft/x.png" in err and "distinct values" in err and "--threshold" in err
        assert tool.main([str(tmp_path / "soft"), str(tmp_path / "gt"), "--threshold", "127"]) == 0
        assert "mIoU" in capsys.readouterr().out
    proposal = np.zeros((10, 10), np.uint8)
    proposal[:3], proposal[3:5] = 1, 2
    write_png(tmp_path / "proposal" / "x.png", proposal)
    assert eval_proposals.main([str(tmp_path / "proposal"), str(tmp_path / "gt")]) == 0  # 0/1/2 maps are fine
    assert "mIoU: 1.0000" in capsys.readouterr().out
    overlay = np.zeros((10, 10, 3), np.uint8)
    overlay[:5, :, 1] = 255
    write_png(tmp_path / "rgb_gt" / "x.png", overlay)
    write_png(tmp_path / "pred" / "x.png", gt)
    assert evaluate.main([str(tmp_path / "pred"), str(tmp_path / "rgb_gt")]) == 2
    assert "colour image" in capsys.readouterr().err
    with pytest.raises(InputError, match="colour image"):
        read_mask(tmp_path / "rgb_gt" / "x.png")


# ---- 5. leftovers of interrupted writes -------------------------------------------------------------
def test_sigterm_during_a_write_leaves_no_temp_file(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from common.cli import exit_cleanly_on_sigterm
        from common.io import _atomic_write
        exit_cleanly_on_sigterm()
        def slow(fh):
            fh.write(b"half")
            fh.flush()
            time.sleep(30)
        _atomic_write(__import__("pathlib").Path({str(tmp_path / 'out.png')!r}), slow, "wb")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.png.*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.png.*.tmp")), "the writer never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not list(tmp_path.iterdir())  # neither the temp file nor a half-written output


def test_stale_temp_files_of_dead_writers_are_removed_live_ones_kept(tmp_path, rng):
    from common.io import _WRITER

    host = _WRITER.rsplit("-", 1)[0]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / "patches" / "images" / f".x_0_0.png.{host}-{dead}.abc123.tmp"
    live = tmp_path / "patches" / "images" / f".y_0_0.png.{host}-{os.getpid()}.def456.tmp"
    other_host = tmp_path / "patches" / "images" / f".z_0_0.png.otherhost-{dead}.ghi789.tmp"
    for f in (stale, live, other_host):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"partial")
    assert remove_stale_temp_files(tmp_path / "nowhere") == 0
    write_png(tmp_path / "in" / "x.png", _image(rng))
    write_png(tmp_path / "prop" / "x.png", np.zeros((40, 48), np.uint8))
    assert crop_img_and_gt.main([str(tmp_path / "in"), str(tmp_path / "prop"), str(tmp_path / "patches"),
                                 "--crop_size", "32"]) == 0
    assert not stale.exists() and live.exists() and other_host.exists()


# ---- 8. the allow-list is what its docstring says ------------------------------------------------
def test_allow_list_is_exactly_the_documented_set():
    from mmengine.config.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = mmengine_checkpoint_globals()
    assert HistoryBuffer in allowed and ConfigDict in allowed and getattr in allowed
    assert not any(obj in allowed for obj in (eval, exec, os.system, __import__, setattr, object))
    assert np.dtype("O").__class__ not in allowed  # no object arrays
    assert len(allowed) == 3 + 4 + 6  # mmengine classes + getattr, NumPy rebuild functions/classes, 6 dtypes
