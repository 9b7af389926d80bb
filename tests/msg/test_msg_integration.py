"""CPU end to end on synthetic data: SPM -> crop -> train a tiny config -> checkpoint -> resume ->
test -> predict -> evaluate; and a 2-process Gloo dist_train.sh run."""
from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.io import read_mask, write_png
from common.morphology import remove_small_holes
from common.synthetic import make_synthetic_image
from evaluation.folders import score_objects
from MSG.compat.safe_globals import allow_mmengine_checkpoints
from tests.tooling import load_tool

ablation = load_tool("ablation")
crop_img_and_gt = load_tool("crop_img_and_gt")
evaluate = load_tool("evaluate")
predict = load_tool("predict")
publish_model = load_tool("publish_model")

spm_cli = load_tool("spm")


ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny_mssg_cpu.py"


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    rng = np.random.default_rng(11)
    for i in range(2):
        image, gland, _ = make_synthetic_image(rng, 96, 128, n_glands=3)
        write_png(root / "glas" / "images" / f"syn_{i}.png", image)
        write_png(root / "glas" / "masks" / f"syn_{i}.png", gland.astype(np.uint8) * 255)
    assert spm_cli.main(["--train_image_path", str(root / "glas" / "images"), "--output_root", str(root / "spm"),
                         "--maxIter", "5", "--nChannel", "16", "--min_border_pixels", "300",
                         "--no-compile", "--device", "cpu"]) == 0
    proposals = root / "spm" / "cluster_5_nConv_3" / "gland_proposal"
    assert crop_img_and_gt.main([str(root / "glas" / "images"), str(proposals), str(root / "patches"),
                                 "--crop_size", "64", "--stride", "48"]) == 0
    return root


def _train(root: Path, work: Path, flags: tuple[str, ...] = (), options: tuple[str, ...] = ()):
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), str(TINY), "--work-dir", str(work), *flags,
           "--cfg-options", *options, f"train_dataloader.dataset.data_root={root / 'patches'}",
           f"val_dataloader.dataset.data_root={root / 'glas'}", f"test_dataloader.dataset.data_root={root / 'glas'}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)


def test_train_resume_test_predict_evaluate(patches, tmp_path, capsys):
    work = tmp_path / "work"
    # 2 iterations, then resume to 4
    first = _train(patches, work, options=("train_cfg.max_iters=2",))
    assert first.returncode == 0, first.stderr[-3000:]
    startup = first.stdout + first.stderr
    assert "Config:" not in startup and "(the hook table: --verbose)" in startup  # a short log by default
    assert (work / "iter_2.pth").is_file()
    second = _train(patches, work, flags=("--resume",))
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "resumed" in log.lower() and "Iter(train) [4/4]" in log
    assert "decode.loss_variation" in log and "decode.relabel_frac" in log  # omission active from iter 2
    allow_mmengine_checkpoints()
    ckpt = torch.load(work / "iter_4.pth", map_location="cpu", weights_only=True)  # the allow-list suffices
    assert ckpt["meta"]["iter"] == 4
    assert "mIoU" in log  # validation at the end of training on the GT masks

    test = subprocess.run([sys.executable, str(ROOT / "tools" / "test.py"), str(TINY), str(work / "iter_4.pth"),
                           "--work-dir", str(tmp_path / "test"), "--tta", "--out", str(tmp_path / "test_out"),
                           "--cfg-options",
                           f"test_dataloader.dataset.data_root={patches / 'glas'}"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "mIoU" in test.stdout + test.stderr

    out = tmp_path / "pred"
    assert predict.main([str(TINY), str(work / "iter_4.pth"), str(patches / "glas" / "images"), "--out", str(out),
                         "--tta", "--device", "cpu"]) == 0
    mask = read_mask(out / "masks" / "syn_0.png")
    assert mask.shape == (96, 128) and set(np.unique(mask)) <= {0, 255}
    # predict.py --tta and tools/test.py --tta run the same tta_pipeline through SegTTAModel
    np.testing.assert_array_equal(mask > 0, read_mask(tmp_path / "test_out" / "syn_0.png") > 0)
    assert (out / "overlays" / "syn_0.png").is_file()
    # --fill-holes applies SPM's hole rule to each mask; below AREA=10**6 every background component of a
    # 96x128 mask is a "hole" (as in skimage), so any predicted gland fills the whole image
    filled = tmp_path / "filled"
    for area in (40, 10**6):
        assert predict.main([str(TINY), str(work / "iter_4.pth"), str(patches / "glas" / "images"), "--out",
                             str(filled / str(area)), "--tta", "--device", "cpu", "--fill-holes", str(area)]) == 0
        np.testing.assert_array_equal(read_mask(filled / str(area) / "masks" / "syn_0.png") > 0,
                                      remove_small_holes(mask > 0, area))
    assert mask.any() and (read_mask(filled / str(10**6) / "masks" / "syn_0.png") > 0).all()
    capsys.readouterr()
    assert evaluate.main([str(out / "masks"), str(patches / "glas" / "masks")]) == 0
    assert "obj_F1" in capsys.readouterr().out

    # a published model: fp16 weights and the config in one file, its sha256 beside it, checked on load
    published = tmp_path / "weights" / "model.pth"
    assert publish_model.main([str(work / "iter_4.pth"), str(published), "--config", str(TINY)]) == 0
    sums = (tmp_path / "weights" / "SHA256SUMS").read_text().split()
    assert sums[1] == "model.pth" and len(sums[0]) == 64
    state = torch.load(published, map_location="cpu", weights_only=True)["state_dict"]
    assert any(v.dtype == torch.float16 for v in state.values())
    assert predict.main([str(published), str(patches / "glas" / "images"), "--out", str(tmp_path / "pub"),
                         "--tta", "--device", "cpu"]) == 0
    agree = (read_mask(tmp_path / "pub" / "masks" / "syn_0.png") > 0) == (mask > 0)
    assert agree.mean() >= 0.99
    data = bytearray(published.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte
    published.write_bytes(bytes(data))
    capsys.readouterr()
    assert predict.main([str(published), str(patches / "glas" / "images"), "--out", str(tmp_path / "bad")]) == 2
    assert "sha256 differs" in capsys.readouterr().err


def test_dist_train_two_gloo_processes(patches, tmp_path):
    """The "+ Omission" ablation variant (no Variation: its embedding branch gets no gradient) under DDP."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    work = tmp_path / "dist"
    proc = subprocess.run(
        ["bash", str(ROOT / "tools" / "dist_train.sh"), str(TINY), "2", str(work), "--cfg-options",
         "train_cfg.max_iters=3", "train_cfg.val_interval=100", "train_dataloader.batch_size=2",
         "model.decode_head.variation=None", "model.decode_head.omission.start_iter=1",
         f"train_dataloader.dataset.data_root={patches / 'patches'}",
         f"val_dataloader.dataset.data_root={patches / 'glas'}"],
        capture_output=True, text=True, timeout=900, env=env, cwd=ROOT,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Distributed launcher: pytorch" in log or "world_size: 2" in log.replace("World size", "world_size")
    assert (work / "iter_2.pth").is_file()


def test_ablation_trains_predicts_evaluates_and_resumes(patches, tmp_path, capfd):
    work = tmp_path / "ablation"
    argv = ["--config", str(TINY), "--variants", "ce", "msg", "--iters", "2",
            "--images", str(patches / "glas" / "images"), "--masks", str(patches / "glas" / "masks"),
            "--work-root", str(work), "--cfg-options", f"train_dataloader.dataset.data_root={patches / 'patches'}"]
    proposals = patches / "spm" / "cluster_5_nConv_3" / "gland_proposal"
    (tmp_path / "grade.csv").write_text("name,grade (GlaS)\nsyn_0,benign\nsyn_1,malignant\n")
    assert ablation.main([*argv, "--proposals", str(proposals), "--fill-holes", "40",
                          "--validate", str(patches / "glas" / "images"), str(patches / "glas" / "masks"),
                          "--groups", str(tmp_path / "grade.csv")]) == 0
    out = capfd.readouterr().out
    assert "model.decode_head.omission.start_iter=1" in out  # 2 of 4 in the config -> 1 of 2
    assert "decode.relabel_frac" in out and "decode.loss_variation" in out  # from the msg run only
    rows = list(csv.DictReader((work / "ablation.csv").open()))
    assert [r["variant"] for r in rows] == ["proposals", "ce", "msg"]
    expected, _, _ = score_objects(proposals, patches / "glas" / "masks")
    assert rows[0]["mIoU"] == f"{expected['mIoU']:.4f}" and rows[0]["obj_F1"] == f"{expected['obj_F1']:.4f}"
    rows = rows[1:]
    for row in rows:
        assert row["iters"] == "2" and row["images"] == "2"
        assert 0.0 <= float(row["mIoU"]) <= 1.0 and 0.0 <= float(row["obj_F1"]) <= 1.0
        assert float(row["s_per_iter"]) > 0
        # the declared validation set (here the same two images) through the same protocol
        validation, _, _ = score_objects(work / row["variant"] / "val_pred" / "masks", patches / "glas" / "masks")
        assert row["val_mIoU"] == f"{validation['mIoU']:.4f}"
        # one image per grade: each group's mIoU is that image's own (evaluation and validation sets)
        for prefix, folder in (("", "pred"), ("val_", "val_pred")):
            _, per_image, _ = score_objects(work / row["variant"] / folder / "masks", patches / "glas" / "masks")
            own = {r["image"]: r["mIoU"] for r in per_image}
            assert (row[f"{prefix}mIoU_benign"], row[f"{prefix}mIoU_malignant"]) == (own["syn_0"], own["syn_1"])
        filled, _, _ = score_objects(work / row["variant"] / "pred" / "masks_fill40", patches / "glas" / "masks")
        assert row["fill_mIoU"] == f"{filled['mIoU']:.4f}"
        np.testing.assert_array_equal(
            read_mask(work / row["variant"] / "pred" / "masks_fill40" / "syn_1.png") > 0,
            remove_small_holes(read_mask(work / row["variant"] / "pred" / "masks" / "syn_1.png") > 0, 40))
    rows = [{k: v for k, v in r.items() if not k.startswith(("fill_", "val_", "mIoU_"))} for r in rows]
    assert (work / "ce" / "iter_2.pth").is_file() and (work / "msg" / "pred" / "masks" / "syn_1.png").is_file()
    # A second call reuses the finished checkpoints and reproduces the table.
    assert ablation.main(argv) == 0
    assert "tools/train.py" not in capfd.readouterr().out
    assert [{**r, "predict_s": ""} for r in csv.DictReader((work / "ablation.csv").open())] == [
        {**r, "predict_s": ""} for r in rows]
    # --no-hausdorff skips only the Hausdorff
    assert ablation.main([*argv, "--no-hausdorff"]) == 0
    fast_rows = list(csv.DictReader((work / "ablation.csv").open()))
    assert all(r["obj_Hausdorff"] == "nan" for r in fast_rows)
    assert [{**r, "obj_Hausdorff": "", "predict_s": ""} for r in fast_rows] == [
        {**r, "obj_Hausdorff": "", "predict_s": ""} for r in rows]
    # TTA at chosen ratios predicts into its own folder and leaves the 1x table's checkpoints alone
    assert ablation.main([*argv, "--variants", "msg", "--tta-ratios", "1", "1.5"]) == 0
    assert (work / "msg" / "pred_tta_1-1.5" / "masks" / "syn_1.png").is_file()
    assert "tools/train.py" not in capfd.readouterr().out

    # what users look at: training curves from the scalar logs, and the results montage
    make_figure = load_tool("make_figure")
    plot_curves = load_tool("plot_curves")

    msg_curves, ce_curves = plot_curves.read_scalars(work / "msg"), plot_curves.read_scalars(work / "ce")
    assert [step for step, _ in msg_curves["decode.loss_ce"]] == [1, 2]
    assert "decode.relabel_frac" in msg_curves and "decode.relabel_frac" not in ce_curves
    assert plot_curves.main([str(work / "ce"), str(work / "msg"), "--out", str(tmp_path / "curves.png"),
                             "--labels", "CE", "MSSG"]) == 0
    assert cv2.imread(str(tmp_path / "curves.png")).shape[0] > 200
    assert make_figure.main(["--images", str(patches / "glas" / "images"), "--names", "syn_0", "syn_1",
                             "--column", f"proposal={proposals}", "--column", f"MSSG={work / 'msg' / 'pred' / 'masks'}",
                             "--column", f"ground truth={patches / 'glas' / 'masks'}", "--out",
                             str(tmp_path / "fig.png"), "--width", "64"]) == 0
    assert cv2.imread(str(tmp_path / "fig.png")).shape == (24 + 2 * 48, 4 * 64, 3)
