"""Pooled mIoU/Dice on hand-made masks, eval_proposals on files, and the authors' reference map."""
from __future__ import annotations

import numpy as np
import pytest

from common.io import write_png
from evaluation.pixel import PooledCounts, pooled_metrics
from tests.tooling import load_tool


def test_pooled_metrics_by_hand():
    # image A (2x2): pred {0,1}, gt {0,2} -> fg inter 1, fg union 3, bg inter 1, bg union 3
    pa = np.array([[1, 1], [0, 0]], bool)
    ga = np.array([[1, 0], [1, 0]], bool)
    # image B (1x4): pred all, gt all -> fg inter 4, union 4, bg inter 0, union 0
    pb = np.ones((1, 4), bool)
    gb = np.ones((1, 4), bool)
    m = pooled_metrics([(pa, ga), (pb, gb)])
    assert m["IoU_gland"] == pytest.approx(5 / 7)
    assert m["IoU_background"] == pytest.approx(1 / 3)
    assert m["mIoU"] == pytest.approx((5 / 7 + 1 / 3) / 2)
    assert m["Dice"] == pytest.approx(2 * 5 / (6 + 6))


def test_pooled_is_not_mean_of_images():
    small = (np.zeros((1, 2), bool), np.ones((1, 2), bool))  # fg IoU 0
    big = (np.ones((10, 10), bool), np.ones((10, 10), bool))  # fg IoU 1
    assert pooled_metrics([small, big])["IoU_gland"] == pytest.approx(100 / 102)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ in shape"):
        PooledCounts().update(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_eval_proposals_cli(tmp_path, capsys):
    eval_proposals = load_tool("eval_proposals")

    pred = np.zeros((4, 4), np.uint8)
    pred[:2] = 1
    pred[2, :2] = 2  # border + interior both count as gland
    gt = np.zeros((4, 4), np.uint8)
    gt[:3] = 255
    write_png(tmp_path / "p" / "x.png", pred)
    write_png(tmp_path / "g" / "x_anno.png", gt)
    write_png(tmp_path / "p" / "orphan.png", pred)
    rc = eval_proposals.main([str(tmp_path / "p"), str(tmp_path / "g"), "--csv", str(tmp_path / "t.csv")])
    out, err = capsys.readouterr()
    # fg: inter 10, union 12; bg: inter 4, union 6
    assert f"mIoU: {(10 / 12 + 4 / 6) / 2:.4f}" in out
    assert "orphan" in err and rc == 1
    assert (tmp_path / "t.csv").read_text().splitlines()[-1].startswith("POOLED,")


def test_authors_reference_train_51(reference_root, glas_root, capsys):
    """The authors' published SPM map for train_51 scores 0.699 mIoU against its mask."""
    eval_proposals = load_tool("eval_proposals")

    rc = eval_proposals.main([str(reference_root), str(glas_root / "train" / "masks"),
                              "--pred_suffix", "_gland_proposal"])
    out, _ = capsys.readouterr()
    assert "images: 2" not in out
    miou = float(out.split("mIoU: ")[1].split()[0])
    assert round(miou, 3) == 0.699
    assert rc == 1  # the border-proposal file has no mask named after it, and says so


def _write_pair(root, name: str, pred: np.ndarray, gt: np.ndarray) -> None:
    write_png(root / "p" / f"{name}.png", pred.astype(np.uint8) * 255)
    write_png(root / "g" / f"{name}.png", gt.astype(np.uint8) * 255)


def test_groups_pool_each_grade_like_the_whole_set(tmp_path, rng, capsys):
    """Each group's line equals the pooled metrics of its own images; GlaS's CR-only table reads."""
    eval_proposals = load_tool("eval_proposals")
    pairs = {name: (rng.random((8, 12)) > 0.5, rng.random((8, 12)) > 0.4) for name in ("a", "b", "c", "d")}
    for name, (pred, gt) in pairs.items():
        _write_pair(tmp_path, name, pred, gt)
    # GlaS's Grade.csv: '\r' line ends, spaces before headers and values, a finer grade in the last column
    (tmp_path / "grade.csv").write_bytes(b"name,patient ID, grade (GlaS), grade (fine)\ra.bmp,1, benign, healthy\r"
                                         b"b,1, malignant, poor\rc,2, benign, adenomatous\r")
    rc = eval_proposals.main([str(tmp_path / "p"), str(tmp_path / "g"), "--groups", str(tmp_path / "grade.csv"),
                              "--csv", str(tmp_path / "t.csv")])
    out = capsys.readouterr().out
    assert rc == 0
    lines = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("group ")}
    assert list(lines) == ["group (not in the table)", "group benign", "group malignant"]
    for group, names in (("benign", "ac"), ("malignant", "b"), ("(not in the table)", "d")):
        expected = pooled_metrics([pairs[n] for n in names])
        assert f"images: {len(names)}  mIoU: {expected['mIoU']:.4f}  Dice: {expected['Dice']:.4f}" in lines[
            f"group {group}"]
    table = (tmp_path / "t.csv").read_text().splitlines()
    assert table[0].endswith(",group") and table[1].startswith("a,") and table[1].endswith(",benign")


def test_group_column_by_name_and_its_refusals(tmp_path, rng, capsys):
    evaluate = load_tool("evaluate")
    pred, gt = rng.random((8, 8)) > 0.5, rng.random((8, 8)) > 0.5
    _write_pair(tmp_path, "a", pred, gt)
    (tmp_path / "grade.csv").write_text("name,patient ID, grade (GlaS), grade (fine)\na,1, benign, healthy\n")
    assert evaluate.main([str(tmp_path / "p"), str(tmp_path / "g"), "--no-hausdorff", "--groups",
                          str(tmp_path / "grade.csv"), "--group-column", "grade (fine)"]) == 0
    out = capsys.readouterr().out
    assert "group healthy: images: 1" in out and "obj_F1:" in out.splitlines()[-1]
    rc = evaluate.main([str(tmp_path / "p"), str(tmp_path / "g"), "--groups", str(tmp_path / "grade.csv"),
                        "--group-column", "stage"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "grade.csv: no column 'stage'" in err and "'grade (GlaS)'" in err
    rc = evaluate.main([str(tmp_path / "p"), str(tmp_path / "g"), "--groups", str(tmp_path / "absent.csv")])
    assert rc == 2 and "absent.csv: cannot read the group table" in capsys.readouterr().err
