"""GlaS object metrics against hand-computed values, including a case where the challenge's 50% rule
and an IoU > 0.5 rule disagree, touching instances, set-level weights and empty sides."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import directed_hausdorff

from common.io import write_png
from evaluation.glas_objects import (
    ObjectSums,
    _Objects,
    hausdorff,
    label_objects,
    nearest_hausdorff,
    object_f1_counts,
    object_sums,
)
from tests.tooling import load_tool

evaluate = load_tool("evaluate")


def hand_case() -> tuple[np.ndarray, np.ndarray]:
    """G1 16 px, G2 64 px; S1 == G1, S2 a 16 px piece inside G2 (25% of it), S3 touches nothing."""
    gt = np.zeros((20, 20), np.uint8)
    gt[2:6, 2:6] = 255
    gt[10:18, 10:18] = 255
    pred = np.zeros((20, 20), np.uint8)
    pred[2:6, 2:6] = 1
    pred[10:14, 10:14] = 1
    pred[2:4, 15:17] = 1
    return gt, pred


def test_hand_case_f1_dice_hausdorff():
    gt, pred = hand_case()
    sums = object_sums(label_objects(gt), label_objects(pred))
    assert (sums.tp, sums.fp, sums.fn) == (1, 2, 1)
    gt_side = 0.2 * 1 + 0.8 * (2 * 16 / 80)
    pred_side = (16 * 1 + 16 * 0.4 + 4 * 0) / 36
    assert sums.dice == pytest.approx(0.5 * (gt_side + pred_side))
    h22 = math.hypot(4, 4)  # G2 corner (17,17) to S2 corner (13,13)
    h3 = math.hypot(2, 13)  # S3 overlaps nothing: nearest object G1, farthest pair (5,2)-(3,15)
    assert sums.hausdorff == pytest.approx(0.5 * (0.8 * h22 + (16 * h22 + 4 * h3) / 36))


def _rules_disagree() -> tuple[np.ndarray, np.ndarray]:
    """Image A (40x30): G1 10x10 covered by S1 (200 px, IoU exactly 0.5); touching instances G2|G3
    (10x10 each) spanned by one object S2 (200 px)."""
    gt = np.zeros((40, 30), np.uint8)
    gt[0:10, 0:10] = 1
    gt[20:30, 0:10] = 2
    gt[20:30, 10:20] = 3  # touches G2
    pred = np.zeros_like(gt)
    pred[0:10, 0:20] = 1
    pred[20:30, 0:20] = 1
    return gt, pred


def test_fifty_percent_rule_differs_from_iou_rule_with_touching_instances():
    gt, pred = _rules_disagree()
    g, s = label_objects(gt), label_objects(pred)
    assert g.max() == 3 and s.max() == 2  # instance ids kept, prediction split into components
    # 50% rule: S1 covers all of G1 -> TP; S2 covers all of G2 (its best match) -> TP, G3 unmatched.
    assert object_f1_counts(g, s) == (2, 0, 1)
    # An IoU > 0.5 rule would give no TP at all (both IoUs are exactly 0.5).
    table = np.array([[100 / 200, 0], [0, 100 / 200], [0, 100 / 200]])
    assert not (table > 0.5).any()
    sums = object_sums(g, s)
    assert sums.f1 == pytest.approx(4 / 5)
    assert sums.dice == pytest.approx(2 / 3)  # every pairing is 100 px against 100 + 200
    assert sums.hausdorff == pytest.approx(10.0)  # each G is 10 px from its S's far edge


def test_set_level_weights_and_empty_prediction_side():
    gt_a, pred_a = _rules_disagree()
    gt_b = np.zeros((10, 10), np.uint8)
    gt_b[0:2, 0:2] = 255  # 4 px gland, nothing predicted in image B
    total = ObjectSums()
    total += object_sums(label_objects(gt_a), label_objects(pred_a))
    only_b = object_sums(label_objects(gt_b), label_objects(np.zeros_like(gt_b)))
    assert (only_b.tp, only_b.fp, only_b.fn) == (0, 0, 1)
    assert only_b.dice == 0.0 and only_b.hausdorff == pytest.approx(math.hypot(10, 10))  # image diagonal
    total += only_b
    assert total.f1 == pytest.approx(4 / (4 + 0 + 2))
    assert total.dice == pytest.approx(0.5 * (300 * 2 / 3 / 304 + 2 / 3))  # not the mean of images (1/3)
    assert total.hausdorff == pytest.approx(0.5 * ((300 * 10 + 4 * math.hypot(10, 10)) / 304 + 10))


def test_nearest_object_for_unmatched_ones():
    gt = np.zeros((20, 20), np.uint8)
    gt[0:2, 0:2] = 255
    pred = np.zeros_like(gt)
    pred[0:2, 5:7] = 255  # 5 px away, no overlap
    pred[15:17, 15:17] = 255  # far away
    sums = object_sums(label_objects(gt), label_objects(pred))
    assert (sums.tp, sums.fp, sums.fn) == (0, 2, 1) and sums.dice == 0.0
    far = math.hypot(15, 15)
    assert sums.hausdorff == pytest.approx(0.5 * (5 + (4 * 5 + 4 * far) / 8))


def test_empty_set_and_empty_sides():
    empty = np.zeros((5, 5), np.int32)
    nothing = object_sums(empty, empty)
    assert (nothing.f1, nothing.dice, nothing.hausdorff) == (1.0, 1.0, 0.0)
    one = empty.copy()
    one[1:3, 1:3] = 1
    missed = object_sums(one, empty)  # only a ground-truth side: its half alone
    assert (missed.tp, missed.fp, missed.fn) == (0, 0, 1)
    assert missed.dice == 0.0 and missed.hausdorff == pytest.approx(math.hypot(5, 5))
    spurious = object_sums(empty, one)
    assert (spurious.f1, spurious.dice) == (0.0, 0.0) and spurious.hausdorff == pytest.approx(math.hypot(5, 5))
    assert math.isnan(object_sums(one, one, with_hausdorff=False).hausdorff)


def test_instance_ids_are_objects_binary_falls_back_to_components():
    gt = np.zeros((6, 6), np.uint16)
    gt[:, :3] = 300
    gt[:, 3:] = 7  # touching instances stay two objects, ids need not be small or ordered
    assert label_objects(gt).max() == 2
    assert label_objects((gt > 0).astype(np.uint8) * 255).max() == 1
    diagonal = np.eye(4, dtype=np.uint8)  # 8-connected: one object
    assert label_objects(diagonal).max() == 1


def test_hausdorff_equals_scipy_on_random_blobs(rng):
    for _ in range(5):
        a = np.zeros((40, 50), np.int32)
        b = np.zeros_like(a)
        r, c = rng.integers(0, 30, 2)
        a[r:r + rng.integers(2, 10), c:c + rng.integers(2, 15)] = 1
        r, c = rng.integers(0, 30, 2)
        b[r:r + rng.integers(2, 10), c:c + rng.integers(2, 15)] = 1
        pa, pb = np.argwhere(a), np.argwhere(b)
        expected = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
        assert hausdorff(_Objects(a), 1, _Objects(b), 1) == pytest.approx(expected)


def test_evaluate_cli_set_level_and_binary_notice(tmp_path, capsys):
    gt_a, pred_a = _rules_disagree()
    write_png(tmp_path / "gt" / "a.png", gt_a)  # instance ids
    write_png(tmp_path / "pred" / "a.png", pred_a * 255)
    assert evaluate.main([str(tmp_path / "pred"), str(tmp_path / "gt")]) == 0
    captured = capsys.readouterr()
    assert "obj_F1: 0.8000  obj_Dice: 0.6667  obj_Hausdorff: 10.00" in captured.out
    assert "touching glands merge" not in captured.err
    write_png(tmp_path / "gt" / "a.png", (gt_a > 0).astype(np.uint8) * 255)  # binary: G2|G3 merge
    assert evaluate.main([str(tmp_path / "pred"), str(tmp_path / "gt")]) == 0
    captured = capsys.readouterr()
    assert "obj_F1: 1.0000" in captured.out and "touching glands merge" in captured.err


def test_pruned_nearest_search_equals_brute_force(rng):
    """Many small fragments around a few glands: the bounded nearest-object search finds the same
    minimum as trying every object."""
    gt = np.zeros((60, 80), np.uint8)
    gt[5:20, 5:30] = 1
    gt[35:55, 40:70] = 2
    pred = (rng.random(gt.shape) < 0.03).astype(np.uint8)
    g, s = _Objects(label_objects(gt)), _Objects(label_objects(pred))
    assert s.n > 50
    for k in range(1, s.n + 1):
        brute = min(hausdorff(s, k, g, j) for j in range(1, g.n + 1))
        assert nearest_hausdorff(s, k, g) == pytest.approx(brute)
    for k in range(1, g.n + 1):
        brute = min(hausdorff(g, k, s, j) for j in range(1, s.n + 1))
        assert nearest_hausdorff(g, k, s) == pytest.approx(brute)
