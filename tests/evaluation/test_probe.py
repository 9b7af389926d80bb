"""Linear probe of backbone features (evaluation/probe.py, tools/probe_backbone.py)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.probe import cross_fit, fit_probe, probe_mask, to_feature_grid
from tests.tooling import ROOT, load_tool

probe_backbone = load_tool("probe_backbone")
CONFIG = ROOT / "configs/selfsup/vicregl_wres38w025_glas-half.py"


def _features(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 4) features whose first channel carries the label, the rest noise."""
    feat = rng.normal(0, 1, (*labels.shape, 4)).astype(np.float32)
    feat[..., 0] += np.where(labels, 3.0, -3.0)
    return feat


def test_feature_grid_takes_the_majority_of_each_cell():
    mask = np.zeros((16, 16), bool)
    mask[:, :10] = True
    grid = to_feature_grid(mask, (2, 2))
    assert grid.tolist() == [[True, False], [True, False]]


def test_probe_recovers_a_linear_separation_on_held_out_images():
    rng = np.random.default_rng(0)
    labels = [rng.random((6, 8)) > 0.5 for _ in range(4)]
    features = [_features(lab, rng) for lab in labels]
    masks = cross_fit(features, labels, [(6, 8)] * 4, folds=2)
    for lab, pred in zip(labels, masks, strict=True):
        assert (pred == lab).mean() > 0.95
    up = probe_mask(fit_probe(features, labels), features[0], (24, 32))
    assert up.shape == (24, 32) and (up[1::4, 1::4] == labels[0]).mean() > 0.9


def test_cross_fit_predicts_each_image_from_the_other_folds_only():
    rng = np.random.default_rng(1)
    pattern = rng.random((6, 8)) > 0.5
    feat = _features(pattern, rng)
    # the same features, opposite labels: a probe that saw an image's own labels would reproduce them
    masks = cross_fit([feat, feat], [pattern, ~pattern], [(6, 8), (6, 8)], folds=2)
    assert (masks[0] == ~pattern).all() and (masks[1] == pattern).all()


def test_probe_refuses_single_class_labels_and_bad_folds():
    feat = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(ValueError, match="one class"):
        fit_probe([feat], [np.ones((2, 2), bool)])
    with pytest.raises(ValueError, match="folds"):
        cross_fit([feat], [np.ones((2, 2), bool)], [(2, 2)], folds=2)


def _tiny_set(root: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    images, masks, proposals = (root / n for n in ("images", "masks", "proposals"))
    for d in (images, masks, proposals):
        d.mkdir()
    for i in range(4):
        img = np.full((64, 80, 3), (200, 170, 220), np.uint8)  # pink stroma (BGR)
        mask = np.zeros((64, 80), np.uint8)
        for _ in range(3):
            centre = (int(rng.integers(12, 68)), int(rng.integers(12, 52)))
            cv2.circle(img, centre, 10, (150, 60, 90), -1)
            cv2.circle(mask, centre, 10, 255, -1)
        cv2.imwrite(str(images / f"img_{i}.png"), img)
        cv2.imwrite(str(masks / f"img_{i}.png"), mask)
        proposal = np.where(mask > 0, 2, 0).astype(np.uint8)  # interior ...
        proposal[(mask > 0) & (cv2.erode(mask, np.ones((5, 5), np.uint8)) == 0)] = 1  # ... inside a border
        cv2.imwrite(str(proposals / f"img_{i}.png"), proposal)
    return images, masks, proposals


TINY = ["backbone.width_mult=0.0625", "data.scale=1.0"]


def test_probe_cli_scores_both_fits_alike_when_proposals_equal_masks(tmp_path: Path, capsys):
    images, masks, proposals = _tiny_set(tmp_path)
    code = probe_backbone.main([str(CONFIG), str(images), str(masks), "--checkpoint", "none",
                                "--proposals", str(proposals), "--cfg-options", *TINY])
    assert code == 0
    lines = {ln.split(":")[0]: ln.split(":", 1)[1] for ln in capsys.readouterr().out.splitlines()
             if ln.startswith("probe fitted to")}
    assert set(lines) == {"probe fitted to masks (all)", "probe fitted to proposals (all)"}
    # a 0/1/2 proposal map is read as gland = border + interior: the same labels, the same probe
    assert lines["probe fitted to masks (all)"] == lines["probe fitted to proposals (all)"]
    miou = float(lines["probe fitted to masks (all)"].split("mIoU:")[1].split()[0])
    assert 0.0 <= miou <= 1.0


def test_probe_cli_names_the_missing_mask(tmp_path: Path, capsys):
    images, masks, _ = _tiny_set(tmp_path)
    (masks / "img_2.png").unlink()
    code = probe_backbone.main([str(CONFIG), str(images), str(masks), "--checkpoint", "none", "--cfg-options", *TINY])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(err) == 1 and "img_2" in err[0] and "no ground-truth mask" in err[0]


@pytest.mark.parametrize("tool", ["probe_backbone", "pretrain"])
def test_config_tools_name_a_missing_config(tool: str, tmp_path: Path, capsys):
    missing = tmp_path / "nope.py"
    args = [str(missing), str(tmp_path), str(tmp_path)] if tool == "probe_backbone" else [str(missing)]
    code = load_tool(tool).main(args)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 2 and err == [f"error: {missing}: config file not found"]
