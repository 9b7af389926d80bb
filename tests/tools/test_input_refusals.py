"""Bad input, second round: what would score, train or predict silently wrong is refused with one
``error:`` line naming the file, a non-zero exit and nothing half-written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from PIL import Image

import common.batch as cbatch
import common.io as cio
from common.batch import LOCK_NAME
from common.io import InputError, read_bgr, read_mask, write_png
from MSG.engine.preflight import check_test_inputs, check_train_inputs
from SPM import pipeline
from tests.tooling import load_tool

crop = load_tool("crop_img_and_gt")
evaluate = load_tool("evaluate")
eval_proposals = load_tool("eval_proposals")
predict = load_tool("predict")
prepare_glas = load_tool("prepare_glas")
convert_checkpoint = load_tool("convert_checkpoint")
spm_cli = load_tool("spm")
train = load_tool("train")
test_tool = load_tool("test")

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny_mssg_cpu.py"


def _image(path: Path, h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
    img = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    write_png(path, img)
    return img


def _last_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert lines, err
    return lines[-1]


# ---- crop --------------------------------------------------------------------------------------------


def test_crop_refuses_binary_masks_as_proposals_and_converts_the_original_encoding(tmp_path, capsys):
    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "b.png", seed=1)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 10:30] = 255  # a GT mask or SPM's border_proposal/: 255 would mean "ignore"
    write_png(tmp_path / "prop" / "a.png", mask)
    original = np.zeros((40, 60), np.uint8)
    original[10:30, 10:30] = 254
    original[10:12, 10:30] = 127
    write_png(tmp_path / "prop" / "b.png", original)
    rc = crop.main([str(tmp_path / "in"), str(tmp_path / "prop"), str(tmp_path / "out"), "--crop_size", "32"])
    assert rc == 1
    err = _last_error(capsys)
    assert err.startswith(f"error: {tmp_path / 'prop' / 'a.png'}: values 0, 255 are not a proposal map")
    assert not list((tmp_path / "out" / "proposals").glob("a_*"))
    values = set()
    for f in (tmp_path / "out" / "proposals").glob("b_*.png"):
        values |= set(np.unique(read_mask(f)).tolist())
    assert values == {0, 1, 2}


def test_crop_output_folder_rules(tmp_path, capsys):
    _image(tmp_path / "in" / "a.png")
    write_png(tmp_path / "prop" / "a.png", np.zeros((40, 60), np.uint8))
    args = [str(tmp_path / "in"), str(tmp_path / "prop")]
    with pytest.raises(SystemExit) as exc:
        crop.main([*args, str(tmp_path / "out"), "--crop_size", "16", "--stride", "32"])
    assert exc.value.code == 2 and "uncovered" in capsys.readouterr().err
    assert crop.main([*args, str(tmp_path / "in" / "patches"), "--crop_size", "32"]) == 2
    assert "is (inside) the input folder" in _last_error(capsys)
    assert crop.main([*args, str(tmp_path / "out"), "--crop_size", "32"]) == 0
    n = len(list((tmp_path / "out" / "images").glob("*.png")))
    assert crop.main([*args, str(tmp_path / "out"), "--crop_size", "16", "--stride", "16"]) == 2
    assert "patches of an earlier run" in _last_error(capsys)
    assert crop.main([*args, str(tmp_path / "out"), "--crop_size", "16", "--stride", "16", "--overwrite"]) == 0
    names = {f.name for f in (tmp_path / "out" / "images").glob("*.png")}
    assert len(names) == 3 * 4 != n and names == {f.name for f in (tmp_path / "out" / "proposals").glob("*.png")}


def test_crop_disk_full_leaves_no_half_tiled_image(tmp_path, capsys, monkeypatch):
    for name in ("a", "b"):
        _image(tmp_path / "in" / f"{name}.png")
        write_png(tmp_path / "prop" / f"{name}.png", np.zeros((40, 60), np.uint8))
    real = cio._atomic_write
    calls = {"n": 0}

    def full_disk(path, write, mode):
        calls["n"] += 1
        if calls["n"] > 8 + 3:  # image a (4 tiles, 8 files) done, image b fails on its 4th file
            raise OSError(28, "No space left on device")
        real(path, write, mode)

    monkeypatch.setattr(cio, "_atomic_write", full_disk)
    rc = crop.main([str(tmp_path / "in"), str(tmp_path / "prop"), str(tmp_path / "out"), "--crop_size", "32",
                    "--stride", "32"])
    assert rc == 2 and "No space left on device" in _last_error(capsys)
    left = [f for f in (tmp_path / "out").rglob("*") if f.is_file()]
    assert len(left) == 8 and all(f.name.startswith("a_") and f.suffix == ".png" for f in left)


# ---- one reader honouring EXIF orientation ------------------------------------------------------------


def test_readers_apply_the_exif_orientation_as_opencv_and_mmcv_do(tmp_path):
    import mmcv

    rng = np.random.default_rng(0)
    rgb = np.kron(rng.integers(0, 255, (6, 9, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))  # 48 x 72
    for orientation in (3, 6, 8):
        path = tmp_path / f"o{orientation}.jpg"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(rgb).save(path, exif=exif, quality=95)
        ours, _ = read_bgr(path)
        np.testing.assert_array_equal(ours, cv2.imread(str(path)))
        np.testing.assert_array_equal(ours, mmcv.imread(str(path)))
        assert ours.shape[:2] == ((72, 48) if orientation in (6, 8) else (48, 72))
        mask_path = tmp_path / f"m{orientation}.png"
        Image.fromarray(rgb[:, :, 0]).save(mask_path, exif=exif)
        assert read_mask(mask_path).shape == ours.shape[:2]


def test_dangling_symlink_is_reported_not_skipped(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert [p.name for p in cio.list_files(tmp_path / "imgs")] == ["gone.png"]
    with pytest.raises(InputError, match="broken symbolic link"):
        read_bgr(tmp_path / "imgs" / "gone.png")


# ---- evaluation ---------------------------------------------------------------------------------------


def _masks(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for name in ("a", "b", "c"):
        m = np.zeros((20, 20), np.uint8)
        m[5:15, 5:15] = 255
        write_png(gt / f"{name}.png", m)
        if name != "c":
            write_png(pred / f"{name}.png", m)
    return pred, gt


def test_evaluate_refuses_two_predictions_of_one_stem_and_counts_missing(tmp_path, capsys):
    pred, gt = _masks(tmp_path)
    for tool in (evaluate, eval_proposals):
        assert tool.main([str(pred), str(gt)]) == 1
        assert "1 ground-truth images have no prediction (c)" in _last_error(capsys)
        assert tool.main([str(pred), str(gt), "--allow-missing"]) == 0
        assert "note:" in capsys.readouterr().err
    cv2.imwrite(str(pred / "a.bmp"), np.zeros((20, 20), np.uint8))
    for tool in (evaluate, eval_proposals):
        assert tool.main([str(pred), str(gt), "--allow-missing"]) == 2
        assert "same ground truth 'a'" in _last_error(capsys)


def test_empty_prediction_of_empty_gt_scores_dice_one_and_details(tmp_path, capsys):
    write_png(tmp_path / "gt" / "a.png", np.zeros((10, 10), np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.zeros((10, 10), np.uint8))
    assert evaluate.main([str(tmp_path / "pred"), str(tmp_path / "gt"), "--details"]) == 0
    out = capsys.readouterr().out
    assert "Dice: 1.0000" in out and "pred_fraction: 0.0000" in out


# ---- SPM output roots ---------------------------------------------------------------------------------


def test_spm_refuses_a_resume_with_other_settings_and_a_second_live_writer(tmp_path, capsys):
    _image(tmp_path / "imgs" / "a.png", 24, 24)
    base = ["--train_image_path", str(tmp_path / "imgs"), "--output_root", str(tmp_path / "out"), "--maxIter", "1",
            "--nChannel", "4", "--min_border_pixels", "1", "--no-compile", "--device", "cpu"]
    assert spm_cli.main(base) == 0
    root = tmp_path / "out" / "cluster_5_nConv_3"
    assert json.loads((root / "settings.json").read_text())["scale"] == 1.0 and not (root / LOCK_NAME).exists()
    assert spm_cli.main([*base, "--skip_existing", "--hole_area", "5"]) == 2
    assert "other settings (hole_area 15000 -> 5)" in _last_error(capsys)
    assert spm_cli.main([*base, "--skip_existing"]) == 0
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (root / LOCK_NAME).write_text(json.dumps({"host": os.uname().nodename, "pid": sleeper.pid, "job": ""}))
        assert spm_cli.main([*base, "--seed", "1"]) == 2
        assert f"another run (pid {sleeper.pid}) is writing here" in _last_error(capsys)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert spm_cli.main([*base, "--seed", "1"]) == 0  # the writer is gone: its lock is stale


def test_spm_unknown_device_is_one_line(tmp_path, capsys):
    _image(tmp_path / "imgs" / "a.png", 24, 24)
    assert spm_cli.main(["--train_image_path", str(tmp_path / "imgs"), "--output_root", str(tmp_path / "o"),
                         "--device", "banana"]) == 2
    assert _last_error(capsys) == "error: banana: unknown device (use auto, cpu, cuda or cuda:N)"


def test_spm_refuses_an_image_too_large_for_memory(tmp_path, monkeypatch):
    from SPM.train import CSNetTrainer, SPMTrainConfig

    trainer = CSNetTrainer(SPMTrainConfig(n_channels=128), torch.device("cpu"), exact=True)
    monkeypatch.setattr(pipeline, "available_memory", lambda device: 12 * 2**30)
    pipeline.check_fits("big.png", 775, 522, 1.0, trainer)  # a GlaS image fits
    with pytest.raises(InputError, match=r"6000x6000: mining it at scale 1 needs about .* GiB"):
        pipeline.check_fits("big.png", 6000, 6000, 1.0, trainer)
    pipeline.check_fits("big.png", 6000, 6000, 0.125, trainer)


def test_spm_warns_when_the_embedding_collapses():
    class Collapsed:  # what a diverged CSNet (e.g. --lr 1e30) gives: one embedding for every pixel
        exact = True

        def fit(self, x, seed, on_step=None):
            return torch.zeros(x.shape[2] * x.shape[3], 4)

    image = np.random.default_rng(0).integers(0, 255, (30, 30, 3), dtype=np.uint8)
    _, proposal = pipeline.mine_array(image, Collapsed(), cluster_num=5, min_border_pixels=1)
    assert any("K-means found 1 of 5 clusters" in w for w in proposal.warnings)


# ---- checkpoints, configs, training -------------------------------------------------------------------


@pytest.fixture
def tiny_checkpoints(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(TINY)).model)
    state = model.state_dict()
    good = {"state_dict": state}  # no meta at all
    nan = {"state_dict": {k: (v.clone().fill_(float("nan")) if k.endswith("conv_seg.weight") else v)
                          for k, v in state.items()}}
    missing = {"state_dict": {k: v for k, v in state.items() if not k.startswith("decode_head.")}}
    paths = {}
    for name, ckpt in (("good", good), ("nan", nan), ("missing", missing), ("empty", {"state_dict": {}})):
        paths[name] = tmp_path / f"{name}.pth"
        torch.save(ckpt, paths[name])
    return paths


def test_predict_refuses_weights_that_do_not_fit_or_hold_nan(tiny_checkpoints, tmp_path, capsys):
    _image(tmp_path / "imgs" / "a.png", 48, 64)
    run = [str(tmp_path / "imgs"), "--out", str(tmp_path / "pred"), "--device", "cpu"]
    assert predict.main([str(TINY), str(tiny_checkpoints["good"]), *run]) == 0  # meta without a config is fine
    capsys.readouterr()
    expected = {"nan": "hold NaN or inf", "missing": "tensors missing (e.g. decode_head.",
                "empty": "holds no tensor state dict"}
    for name, text in expected.items():
        assert predict.main([str(TINY), str(tiny_checkpoints[name]), *run]) == 2
        line = _last_error(capsys)
        assert line.startswith(f"error: {tiny_checkpoints[name]}:") and text in line, line
    assert predict.main([str(tiny_checkpoints["good"]), *run]) == 2  # checkpoint alone: its meta has no config
    assert "holds no config" in _last_error(capsys)
    (tmp_path / "empty").mkdir()
    assert predict.main([str(TINY), str(tiny_checkpoints["good"]), str(tmp_path / "empty"), "--out",
                         str(tmp_path / "p2")]) == 2
    assert "no images found" in _last_error(capsys)


def test_config_with_a_syntax_error_is_one_line_in_every_tool(tmp_path, tiny_checkpoints, capsys):
    bad = tmp_path / "bad_config.py"
    bad.write_text("model = dict(\n    type='X',\n  oops\n")
    _image(tmp_path / "imgs" / "a.png")
    for tool, argv in ((train, [str(bad)]), (test_tool, [str(bad), str(tiny_checkpoints["good"])]),
                       (predict, [str(bad), str(tiny_checkpoints["good"]), str(tmp_path / "imgs"), "--out",
                                  str(tmp_path / "p")])):
        assert tool.main(argv) == 2
        line = _last_error(capsys)
        assert line.startswith(f"error: {bad}: config syntax error (line "), line


def test_training_stops_on_a_non_finite_loss(tmp_path):
    model = MODELS.build(Config.fromfile(str(TINY)).model)
    model.current_iter = 6
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* at iteration 7"):
        model.parse_losses({"decode.loss_ce": torch.tensor(float("nan")), "decode.acc_seg": torch.tensor(1.0)})
    loss, _ = model.parse_losses({"decode.loss_ce": torch.tensor(0.5)})
    assert loss.item() == 0.5


def test_train_and_test_check_their_data_before_starting(tmp_path):
    for folder in ("patches/images", "patches/proposals", "test/images", "test/masks"):
        (tmp_path / folder).mkdir(parents=True)
    _image(tmp_path / "patches" / "images" / "p_0_0.png", 32, 32)
    cfg = Config.fromfile(str(TINY))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / "patches")
    cfg.val_cfg = None
    with pytest.raises(InputError, match="missing proposal patch"):
        check_train_inputs(cfg)
    write_png(tmp_path / "patches" / "proposals" / "p_0_0.png", np.zeros((32, 32), np.uint8))
    check_train_inputs(cfg)
    cfg.test_dataloader.dataset.data_root = str(tmp_path / "test")
    torch.save({"state_dict": {}}, tmp_path / "c.pth")
    _image(tmp_path / "test" / "images" / "t.png", 40, 60)
    with pytest.raises(InputError, match="no ground-truth mask"):
        check_test_inputs(cfg, str(tmp_path / "c.pth"))
    write_png(tmp_path / "test" / "masks" / "t.png", np.zeros((20, 60), np.uint8))
    with pytest.raises(InputError, match="size 60x20 differs from its image 60x40"):
        check_test_inputs(cfg, str(tmp_path / "c.pth"))


def test_prepare_glas_refuses_its_source_as_destination_and_a_wrong_folder(tmp_path, capsys):
    _image(tmp_path / "src" / "train_1.bmp")
    assert prepare_glas.main([str(tmp_path / "src"), str(tmp_path / "src")]) == 2
    assert "is the source folder" in _last_error(capsys)
    _image(tmp_path / "other" / "photo.png")
    assert prepare_glas.main([str(tmp_path / "other"), str(tmp_path / "dst")]) == 2
    assert "no GlaS images" in _last_error(capsys)


def test_convert_checkpoint_checks_against_a_config_outside_pytest_and_refuses_empty(tmp_path, tiny_checkpoints,
                                                                                     capsys):
    torch.save({}, tmp_path / "empty.pth")
    assert convert_checkpoint.main([str(tmp_path / "empty.pth"), str(tmp_path / "out.pth")]) == 2
    assert "no tensor state dict" in _last_error(capsys) and not (tmp_path / "out.pth").exists()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"),
                           str(tiny_checkpoints["good"]), str(tmp_path / "conv.pth"), "--config", str(TINY)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "missing keys (0): []" in proc.stdout and "Traceback" not in proc.stderr


def test_unwritable_outputs_are_one_line(tmp_path, tiny_checkpoints, capsys, monkeypatch):
    """An output folder that cannot be created (here: below a regular file, which fails for root too)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    _image(tmp_path / "in" / "a.png")
    write_png(tmp_path / "prop" / "a.png", np.zeros((40, 60), np.uint8))
    assert crop.main([str(tmp_path / "in"), str(tmp_path / "prop"), str(blocker / "out"), "--crop_size", "32"]) == 2
    assert "output folder not writable" in _last_error(capsys)
    assert predict.main([str(TINY), str(tiny_checkpoints["good"]), str(tmp_path / "in"), "--out",
                         str(blocker / "pred"), "--device", "cpu"]) == 2
    assert "output folder not writable" in _last_error(capsys)
    pred, gt = _masks(tmp_path)
    assert evaluate.main([str(pred), str(gt), "--allow-missing", "--csv", str(blocker / "x.csv")]) == 2
    captured = capsys.readouterr()
    assert "mIoU" in captured.out and "cannot write" in captured.err and "Traceback" not in captured.err

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    _image(tmp_path / "imgs" / "a.png", 24, 24)
    monkeypatch.setattr(cbatch, "merge_summary", full)
    assert spm_cli.main(["--train_image_path", str(tmp_path / "imgs"), "--output_root", str(tmp_path / "spm"),
                         "--maxIter", "1", "--nChannel", "4", "--min_border_pixels", "1", "--no-compile",
                         "--device", "cpu"]) == 2
    assert "No space left on device" in _last_error(capsys)


def test_test_tool_refuses_nan_weights_before_inference(tmp_path, tiny_checkpoints):
    _image(tmp_path / "glas" / "images" / "t.png", 48, 64)
    write_png(tmp_path / "glas" / "masks" / "t.png", np.zeros((48, 64), np.uint8))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "test.py"), str(TINY), str(tiny_checkpoints["nan"]),
                           "--work-dir", str(tmp_path / "w"), "--cfg-options",
                           f"test_dataloader.dataset.data_root={tmp_path / 'glas'}"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {tiny_checkpoints['nan']}:") and "NaN or inf" in last
