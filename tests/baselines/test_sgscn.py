"""SGSCN baseline: centre loss by hand and against the original's formulation, the early stop, the
label-free and oracle cluster-to-gland rules, and the command line on tiny synthetic images."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from baselines.sgscn import (
    SGSCNConfig,
    SGSCNTrainer,
    center_loss,
    cluster_image,
    gland_pseudo_mask,
    select_gland_cluster,
    sgscn_loss,
    should_stop,
)
from common.io import write_png
from evaluation.oracles import oracle_majority_labels
from tests.tooling import load_tool

ROOT = Path(__file__).resolve().parents[2]
sgscn_cli = load_tool("sgscn")
oracle_eval = load_tool("oracle_eval")
EPS = 1e-3


def _original_center_loss(o: torch.Tensor) -> torch.Tensor:
    """The original's loops (src/center.py + demo_final.py), written out per pixel on ``(C, H, W)``."""
    c, h, w = o.shape
    x = torch.tensor([[i / h * 2 - 1 for _ in range(w)] for i in range(h)], dtype=o.dtype)
    y = torch.tensor([[j / w * 2 - 1 for j in range(w)] for _ in range(h)], dtype=o.dtype)
    total = o.new_zeros(())
    for k in range(c):
        m = o[k] + EPS
        p = m / m.sum()
        x_c, y_c = (p * x).sum(), (p * y).sum()
        total = total + (p * (x - x_c) ** 2).sum() + (p * (y - y_c) ** 2).sum()
    return total


def test_center_loss_hand_computed():
    # H = 2 rows at x = -1, 0; W = 3 columns at y = -1, -1/3, 1/3.
    y = torch.zeros(1, 2, 2, 3)
    # channel 0: o + eps is constant -> uniform p: var_x = 1/4, var_y = (4/9 + 0 + 4/9) / 3 = 8/27
    # channel 1: o + eps is 0 except two equal masses at (0, 0) and (1, 2): var_x = 1/4, var_y = 4/9
    y[0, 1] = -EPS
    y[0, 1, 0, 0] = y[0, 1, 1, 2] = 1 - EPS
    expected = 0.25 + 8 / 27 + 0.25 + 4 / 9
    assert center_loss(y).item() == pytest.approx(expected, abs=1e-6)
    assert center_loss(y[0]).item() == pytest.approx(expected, abs=1e-6)  # (C, H, W) as well
    # softmax variant: a zero channel is uniform; two equal logits of 50 are two masses of 1/2
    s = torch.zeros(1, 2, 2, 3)
    s[0, 1, 0, 0] = s[0, 1, 1, 2] = 50.0
    assert center_loss(s, softmax=True).item() == pytest.approx(expected, abs=1e-6)


def test_center_loss_equals_original_value_and_gradient_with_negative_outputs():
    gen = torch.Generator().manual_seed(0)
    y = (torch.randn(1, 4, 5, 7, generator=gen) * 0.5 + 1.0).requires_grad_(True)
    assert (y < 0).any()  # BN-like outputs below zero are kept, not clipped
    ours = center_loss(y)
    (g_ours,) = torch.autograd.grad(ours, y)
    ref = _original_center_loss(y[0])
    (g_ref,) = torch.autograd.grad(ref, y)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-6)


def test_sgscn_loss_terms_and_fused_path():
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(1, 6, 9, 11, generator=gen)
    cfg = SGSCNConfig(n_channels=6)
    base = SGSCNConfig(n_channels=6, center=False)
    assert sgscn_loss(y, cfg).item() == pytest.approx(sgscn_loss(y, base).item() + center_loss(y).item(), rel=1e-6)
    assert sgscn_loss(y, cfg, fused=True).item() == pytest.approx(sgscn_loss(y, cfg).item(), rel=1e-5)


def test_early_stop_rule():
    assert should_stop(3, 3) and should_stop(1, 3) and not should_stop(4, 3)
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 12, 16, generator=gen)
    cfg = SGSCNConfig(n_channels=8, max_iter=6, min_labels=8)  # at most 8 labels: stop after the first step
    stopped = SGSCNTrainer(cfg, "cpu", exact=True).fit(image, seed=0)
    assert stopped.iterations == 1 and len(stopped.label_counts) == 1
    # the step that met the rule was still taken: same labels as a run limited to one step
    one = SGSCNTrainer(SGSCNConfig(n_channels=8, max_iter=1, min_labels=0), "cpu", exact=True).fit(image, seed=0)
    assert np.array_equal(stopped.labels, one.labels)
    full = SGSCNTrainer(SGSCNConfig(n_channels=8, max_iter=4, min_labels=0), "cpu", exact=True).fit(image, seed=0)
    assert full.iterations == 4
    assert full.labels.shape == (12, 16) and full.labels.dtype == np.int64 and full.labels.max() < 8


def test_cluster_image_is_seeded():
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 10, 12, generator=gen)
    cfg = SGSCNConfig(n_channels=8, max_iter=2, min_labels=0)
    a, b = cluster_image(image, cfg, "cpu", seed=4), cluster_image(image, cfg, "cpu", seed=4)
    assert np.array_equal(a, b)


def test_gland_pseudo_mask_darkest_large_cluster_and_fallback():
    labels = np.full((200, 200), 3, np.int64)  # 20,000 px left at id 3; ids need not be consecutive
    labels[:25] = 7  # 5,000 px, darkest but small
    labels[25:100] = 42  # 15,000 px, medium
    gray = np.select([labels == 7, labels == 42], [50, 100], 200).astype(np.uint8)
    mask = gland_pseudo_mask(gray, labels, min_pixels=10000)
    assert mask.dtype == bool and np.array_equal(mask, labels == 42)
    sel = select_gland_cluster(gray, labels, min_pixels=4000)
    assert (sel.cluster, sel.mean_gray, sel.pixels, sel.warning) == (7, 50.0, 5000, None)
    with pytest.warns(UserWarning, match="no cluster has more than 30000 pixels"):
        fallback = gland_pseudo_mask(gray, labels, min_pixels=30000)
    assert np.array_equal(fallback, labels == 3)  # the largest


def test_oracle_majority_vote():
    labels = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [2, 2, 5, 5]])
    gt = np.array([[1, 1, 0, 0],
                   [1, 0, 0, 1],
                   [1, 0, 9, 9]])  # cluster 0: 3/4 gland; 1: 1/4; 2: 1/2 (tie -> background); 5: 2/2
    expected = np.array([[1, 1, 0, 0],
                         [1, 1, 0, 0],
                         [0, 0, 1, 1]], bool)
    assert np.array_equal(oracle_majority_labels(labels, gt), expected)


def _tiny_image(rng, h=48, w=64):
    """Bright stroma, two dark 'nuclei rings' and noise, BGR uint8."""
    img = np.full((h, w, 3), (205, 190, 225), np.uint8)
    cv2.circle(img, (16, 24), 10, (120, 60, 110), 3)
    cv2.circle(img, (46, 20), 9, (120, 60, 110), 3)
    noise = rng.integers(-12, 13, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def _summary(root):
    with open(root / "summary.csv") as fh:
        return {r["image"]: r for r in csv.DictReader(fh)}


def test_cli_end_to_end_bad_file_resume_and_oracle(tmp_path, rng, capsys):
    images, out = tmp_path / "in", tmp_path / "out"
    write_png(images / "a_img.png", _tiny_image(rng))
    write_png(images / "b_img.png", _tiny_image(rng))
    (images / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    args = ["--train_image_path", str(images), "--output_root", str(out), "--maxIter", "3", "--nChannel", "16",
            "--min_pixels", "100", "--device", "cpu"]
    rc = sgscn_cli.main(args)
    captured = capsys.readouterr()
    assert rc == 1
    assert "2 done, 0 skipped, 1 failed of 3 files" in captured.out
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "c_corrupt.png" in errors[0]
    rows = _summary(out)
    assert {k: v["status"] for k, v in rows.items()} == {"a_img": "ok", "b_img": "ok", "c_corrupt": "failed"}
    for name in ("a_img", "b_img"):
        mask = cv2.imread(str(out / "pseudo_mask" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        ids = cv2.imread(str(out / "cluster_id" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        colour = cv2.imread(str(out / "cluster_label" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == ids.shape == (48, 64) and mask.dtype == ids.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1} and mask.any()
        assert colour.shape == (48, 64, 3)
        row = rows[name]
        assert 1 <= int(row["iterations"]) <= 3
        assert int(row["n_clusters"]) == len(np.unique(ids))
        assert np.array_equal(mask == 1, ids == int(row["selected_cluster"]))
        assert float(row["gland_fraction"]) == pytest.approx(mask.mean(), abs=1e-5)
    assert sorted(p.name for p in (out / "pseudo_mask").iterdir()) == ["a_img.png", "b_img.png"]  # no temp files

    # resume: done images skipped, the failure retried, earlier rows kept
    assert sgscn_cli.main([*args, "--skip_existing"]) == 1
    assert "0 done, 2 skipped, 1 failed" in capsys.readouterr().out
    assert _summary(out)["a_img"]["status"] == "ok"

    # oracle on the raw ids: a GT equal to one cluster is recovered exactly
    ids = cv2.imread(str(out / "cluster_id" / "a_img.png"), cv2.IMREAD_UNCHANGED)
    write_png(tmp_path / "gt" / "a_img.png", (ids == ids[24, 16]).astype(np.uint8) * 255)
    write_png(tmp_path / "gt" / "b_img.png", np.zeros((48, 64), np.uint8))
    assert oracle_eval.main([str(out / "cluster_id"), str(tmp_path / "gt")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "ORACLE" in line and "images: 2" in line and "IoU_gland: 1.0000" in line


def test_cli_bad_arguments_and_folders(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        sgscn_cli.main(["--train_image_path", str(tmp_path), "--maxIter", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        sgscn_cli.main(["--train_image_path", str(tmp_path), "--no-center", "--center-softmax"])
    assert exc.value.code == 2
    (tmp_path / "empty").mkdir()
    assert sgscn_cli.main(["--train_image_path", str(tmp_path / "empty"), "--output_root", str(tmp_path / "o")]) == 2
    assert "no files found" in capsys.readouterr().err
    assert sgscn_cli.main(["--train_image_path", str(tmp_path / "none"), "--output_root", str(tmp_path / "o")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_scripts_run_from_the_repository_root():
    for script in ("tools/sgscn.py", "tools/oracle_eval.py"):
        proc = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr[-2000:]


def test_label_free_rule_warns_when_it_picks_a_bright_cluster():
    labels = np.zeros((200, 200), np.int64)
    labels[:5] = 1  # 1,000 px of dark nuclei: too small
    labels[5:50] = 2  # 9,000 px mid-gray: too small
    gray = np.select([labels == 1, labels == 2], [30, 120], 220).astype(np.uint8)
    sel = select_gland_cluster(gray, labels, min_pixels=10000)
    assert sel.cluster == 0 and "brighter than the image" in sel.warning
    labels[:60] = 1  # now the dark cluster is large: no warning
    assert select_gland_cluster(np.where(labels == 1, 30, 220).astype(np.uint8), labels, 10000).warning is None


def test_label_free_rule_warns_about_a_one_cluster_map():
    labels = np.zeros((120, 120), np.int64)  # what a diverged run (--lr 1e30) gives
    sel = select_gland_cluster(np.full((120, 120), 100, np.uint8), labels, min_pixels=10000)
    assert sel.cluster == 0 and "collapsed to one cluster" in sel.warning
