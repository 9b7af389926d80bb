"""Linear probe of backbone features (evaluation/probe.py, tools/probe_backbone.py)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.probe import (
    agreement,
    convergence_note,
    cross_fit,
    cross_fit_logits,
    fit_probe,
    least_agreeing,
    probe_mask,
    to_feature_grid,
)
from tests.tooling import ROOT, load_tool

probe_backbone = load_tool("probe_backbone")
screen_proposals = load_tool("screen_proposals")
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


def test_agreement_is_the_two_class_miou_of_one_image():
    a = np.zeros((4, 4), bool)
    a[:2] = True  # 8 gland cells
    b = np.zeros((4, 4), bool)
    b[:1] = True  # 4 gland cells, all inside a
    # gland IoU 4/8, background IoU 8/12
    assert agreement(a, b) == pytest.approx((4 / 8 + 8 / 12) / 2)
    assert agreement(a, a) == 1.0 and agreement(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


def test_least_agreeing_names_the_lowest_fraction_ties_by_order():
    assert least_agreeing([0.9, 0.2, 0.5, 0.2, 0.8], 0.4) == [1, 3]
    assert least_agreeing([0.9, 0.2, 0.5], 0.0) == []
    with pytest.raises(ValueError, match="fraction"):
        least_agreeing([0.5], 1.0)


def test_cross_fit_logits_flag_the_image_whose_labels_contradict_the_others():
    rng = np.random.default_rng(2)
    labels = [rng.random((6, 8)) > 0.5 for _ in range(6)]
    features = [_features(lab, rng) for lab in labels]
    noisy = [lab.copy() for lab in labels]
    noisy[3] = ~noisy[3]  # one wrong proposal: its features say the opposite
    logits = cross_fit_logits(features, noisy, folds=3)
    scores = [agreement(lg > 0, lab) for lg, lab in zip(logits, noisy, strict=True)]
    assert least_agreeing(scores, 1 / 6) == [3]
    assert scores[3] < 0.1 and min(s for i, s in enumerate(scores) if i != 3) > 0.9


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


def test_screen_cli_leaves_out_the_contradicting_proposal_and_scores_both_sides(tmp_path: Path, capsys):
    images, masks, proposals = _tiny_set(tmp_path)
    wrong = cv2.imread(str(proposals / "img_1.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(proposals / "img_1.png"), np.where(wrong > 0, 0, 2).astype(np.uint8))  # stroma proposed
    out = tmp_path / "screen"
    code = screen_proposals.main([str(CONFIG), str(images), str(proposals), str(out), "--checkpoint", "none",
                                  "--drop", "0.25", "--masks", str(masks), "--cfg-options", *TINY])
    assert code == 0
    assert (out / "kept.txt").read_text().split() == ["img_0", "img_2", "img_3"]
    rows = (out / "agreement.csv").read_text().splitlines()
    assert rows[0] == "image,agreement,kept,proposal_mIoU" and len(rows) == 5
    image, _, kept, proposal_miou = rows[2].split(",")
    assert (image, kept) == ("img_1", "0") and float(proposal_miou) < 0.2
    lines = {ln.split(":")[0]: ln for ln in capsys.readouterr().out.splitlines()}
    miou = {k: float(v.split("mIoU:")[1].split()[0]) for k, v in lines.items() if "proposals (all)" in k}
    assert miou["left-out proposals (all)"] < 0.2 < miou["all proposals (all)"] < miou["kept proposals (all)"] == 1.0


def test_screen_cli_names_a_missing_proposal_and_writes_nothing(tmp_path: Path, capsys):
    images, _, proposals = _tiny_set(tmp_path)
    (proposals / "img_3.png").unlink()
    out = tmp_path / "screen"
    code = screen_proposals.main([str(CONFIG), str(images), str(proposals), str(out), "--checkpoint", "none",
                                  "--cfg-options", *TINY])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(err) == 1 and "img_3" in err[0]
    assert not (out / "kept.txt").exists() and not (out / "agreement.csv").exists()


def test_screen_cli_drops_the_border_the_other_images_call_stroma(tmp_path: Path, capsys):
    images, masks, proposals = _tiny_set(tmp_path)
    spm = cv2.imread(str(proposals / "img_1.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(masks / "img_1.png"), cv2.IMREAD_GRAYSCALE) > 0
    # the glands as all border (a stride-8 probe cannot judge a 2-px ring), and SPM's cue took a band of
    # stroma for border too (well clear of the glands)
    true_border = mask
    spm[mask] = 1
    stroma = ~cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    stroma[:, 40:] = False
    spm[stroma] = 1
    cv2.imwrite(str(proposals / "img_1.png"), spm)
    out = tmp_path / "screen"
    code = screen_proposals.main([str(CONFIG), str(images), str(proposals), str(out), "--checkpoint", "none",
                                  "--drop", "0", "--border-threshold", "0", "--hole-area", "0",
                                  "--masks", str(masks), "--cfg-options", *TINY])
    assert code == 0
    screened = cv2.imread(str(out / "gland_proposal" / "img_1.png"), cv2.IMREAD_GRAYSCALE)
    # the stroma band goes; much of the glands stays (the random tiny backbone's 8-px cells blur their rims)
    assert stroma.sum() > 100 and (screened[stroma] != 0).mean() < 0.1
    assert (screened[true_border] == 1).mean() > 0.4
    assert sorted(p.name for p in (out / "gland_proposal").iterdir()) == [f"img_{i}.png" for i in range(4)]
    assert agreement(screened > 0, mask) > agreement(spm > 0, mask) + 0.05
    printed = capsys.readouterr().out
    assert "screened proposals (all): images: 4" in printed and "border kept where" in printed


def test_convergence_note_prints_one_line_for_any_number_of_unconverged_fits(capsys):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with convergence_note("the proposals"):
        for _ in range(3):
            warnings.warn("lbfgs failed to converge", ConvergenceWarning, stacklevel=1)
    with convergence_note("the masks"):
        pass
    assert capsys.readouterr().out.splitlines() == [
        "note: a probe fitted to the proposals stopped at its iteration limit before full convergence"]


def test_screen_cli_refuses_a_gland_threshold_without_a_border_threshold(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        screen_proposals.main([str(CONFIG), str(tmp_path), str(tmp_path), str(tmp_path / "out"),
                               "--gland-threshold", "2"])
    assert exit_info.value.code == 2 and "--gland-threshold needs --border-threshold" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
