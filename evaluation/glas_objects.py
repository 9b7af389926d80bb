"""The GlaS challenge's object-level metrics (Sirinukunwattana et al., Med. Image Anal. 2017; the
challenge's evaluation page), accumulated over a whole evaluated set.

Objects are instance label maps: ``0`` background, ``1..n`` objects (see :func:`label_objects`).
With ground-truth objects ``G_i`` and segmented objects ``S_j`` of **all images of the set**:

F1
    Each segmented object ``S_j`` is matched to the ground-truth object of its image that it
    overlaps most; it is a true positive if that overlap covers at least 50% of the ground-truth
    object (``|S_j ∩ G_i| >= 0.5 |G_i|``), otherwise a false positive. A ground-truth object counts
    as matched once (only a tie at exactly 50% could claim it twice; the second is a false
    positive). ``FN = #G - TP``; TP/FP/FN are summed over the set, then
    ``F1 = 2 TP / (2 TP + FP + FN)``. One segmented object spanning two touching glands is at most
    one TP.

Object Dice
    ``1/2 [ sum_i g_i Dice(G_i, S*(G_i)) + sum_j s_j Dice(G*(S_j), S_j) ]`` with set-level weights
    ``g_i = |G_i| / sum_k |G_k|`` and ``s_j = |S_j| / sum_k |S_k|``; ``S*(G_i)`` is the segmented
    object (same image) overlapping ``G_i`` most, ``G*(S_j)`` likewise; an object that overlaps
    nothing on the other side contributes Dice 0.

Object Hausdorff
    The same weighted form with the Hausdorff distance ``H``; an object that overlaps nothing on the
    other side takes the nearest object (minimum ``H``) of its image on the other side.

Empty sides, stated and tested: an image in which one side has no object at all gives each object
of the other side Dice 0 and Hausdorff equal to the image diagonal (the largest distance inside
the image; the challenge leaves this case undefined). When a whole side of the set is empty, its
half is dropped and the other half alone is the value; a set with no object on either side scores
Dice 1 and Hausdorff 0. The per-image values of ``tools/evaluate.py --csv`` are the same formulas
over one image, for inspection; the summary is always the set-level value.

Hausdorff distances are exact: Euclidean distance transforms on the crop that bounds the two
objects (nearest points always lie inside it), and the nearest-object search is pruned by a lower
bound (distance from an object's extreme pixels to the other object's bounding box).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

_EIGHT = np.ones((3, 3), bool)


def is_instance_map(mask: np.ndarray) -> bool:
    """True when ``mask`` holds more than one positive value (instance ids, not a binary mask)."""
    values = np.unique(mask)
    return int((values > 0).sum()) > 1


def renumber_ids(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` int64: the mask's positive values renumbered ``1..n`` in increasing order, 0 kept."""
    values, inverse = np.unique(mask, return_inverse=True)
    # np.unique sorts, so 0 (if present) maps to 0 and the positive ids to 1..n
    return inverse.reshape(mask.shape) + (0 if values[0] == 0 else 1)


def label_objects(mask: np.ndarray) -> np.ndarray:
    """Instance labels ``(H, W)`` int32, ``1..n``: the mask's own ids when it has several positive
    values (GlaS ``*_anno.bmp``), else 8-connected components of ``mask > 0`` (touching glands merge)."""
    if is_instance_map(mask):
        return renumber_ids(mask).astype(np.int32)
    return ndimage.label(mask > 0, structure=_EIGHT)[0].astype(np.int32)


def contingency(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixel counts ``(n_gt + 1, n_pred + 1)`` of every (gt label, pred label) pair; row/col 0 = background."""
    n_gt, n_pred = int(gt.max()), int(pred.max())
    flat = gt.ravel().astype(np.int64) * (n_pred + 1) + pred.ravel()
    return np.bincount(flat, minlength=(n_gt + 1) * (n_pred + 1)).reshape(n_gt + 1, n_pred + 1)


def object_f1_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` of one image's instance label maps under the GlaS 50% rule."""
    table = contingency(gt, pred)
    n_gt, n_pred = table.shape[0] - 1, table.shape[1] - 1
    if n_gt == 0 or n_pred == 0:
        return 0, n_pred, n_gt
    inter = table[1:, 1:]
    size_gt = table[1:, :].sum(1)
    best = inter.argmax(0)  # per segmented object: the GT object it overlaps most
    overlap = inter[best, np.arange(n_pred)]
    hit = (overlap > 0) & (2 * overlap >= size_gt[best])
    tp = len(np.unique(best[hit]))
    return tp, n_pred - tp, n_gt - tp


class _Objects:
    """One label map's objects: areas, bounding boxes and extreme pixels, computed once."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.n = int(labels.max())
        self.slices = ndimage.find_objects(labels, self.n)
        if any(sl is None for sl in self.slices):
            raise ValueError("object labels must be 1..n without gaps (use label_objects)")
        self.area = np.bincount(labels.ravel(), minlength=self.n + 1)[1:]
        # (n, 4): first row, last row, first col, last col
        self.boxes = np.array([(r.start, r.stop - 1, c.start, c.stop - 1) for r, c in self.slices], np.int64)
        self._extremes: np.ndarray | None = None

    def mask(self, k: int, box: tuple[slice, slice]) -> np.ndarray:
        return self.labels[box] == k

    @property
    def extremes(self) -> np.ndarray:
        """``(n, 4, 2)``: each object's topmost, bottommost, leftmost and rightmost pixel (row, col)."""
        if self._extremes is None:
            rows, cols = np.indices(self.labels.shape)
            index = np.arange(1, self.n + 1)
            found = [position(coord, self.labels, index) for coord in (rows, cols)
                     for position in (ndimage.minimum_position, ndimage.maximum_position)]
            self._extremes = np.array(found, np.int64).reshape(4, self.n, 2).transpose(1, 0, 2)
        return self._extremes


def _union_box(a: _Objects, i: int, b: _Objects, j: int) -> tuple[slice, slice]:
    (ra, ca), (rb, cb) = a.slices[i - 1], b.slices[j - 1]
    return (slice(min(ra.start, rb.start), max(ra.stop, rb.stop)),
            slice(min(ca.start, cb.start), max(ca.stop, cb.stop)))


def hausdorff(a: _Objects, i: int, b: _Objects, j: int) -> float:
    """Exact Hausdorff distance between object ``i`` of ``a`` and object ``j`` of ``b`` (pixels)."""
    box = _union_box(a, i, b, j)
    ma, mb = a.mask(i, box), b.mask(j, box)
    a_to_b = ndimage.distance_transform_edt(~mb)[ma].max()
    b_to_a = ndimage.distance_transform_edt(~ma)[mb].max()
    return float(max(a_to_b, b_to_a))


def _points_to_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Largest distance from ``points (..., P, 2)`` to boxes ``(..., 4)``, broadcast over the leading axes."""
    r, c = points[..., 0], points[..., 1]
    dr = np.maximum(np.maximum(boxes[..., 0:1] - r, r - boxes[..., 1:2]), 0)
    dc = np.maximum(np.maximum(boxes[..., 2:3] - c, c - boxes[..., 3:4]), 0)
    return np.sqrt(dr * dr + dc * dc).max(-1)


def nearest_hausdorff(a: _Objects, i: int, b: _Objects) -> float:
    """``min_j H(a_i, b_j)`` over all objects of ``b``; ``b`` must have at least one object."""
    # Lower bound of H(a_i, b_j): any pixel of one object is at least as far from the other object
    # as from that object's bounding box; candidates are tried in the order of this bound.
    bounds = np.maximum(_points_to_boxes(a.extremes[i - 1][None], b.boxes),
                        _points_to_boxes(b.extremes, a.boxes[i - 1][None]))
    best = math.inf
    for j in np.argsort(bounds, kind="stable") + 1:
        if bounds[j - 1] >= best:
            break
        best = min(best, hausdorff(a, i, b, int(j)))
    return best


@dataclass
class ObjectSums:
    """Sums over a set of images; ``+=`` adds images, the properties give the GlaS metrics."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    gt_area: float = 0.0  # sum_i |G_i|
    pred_area: float = 0.0  # sum_j |S_j|
    gt_dice: float = 0.0  # sum_i |G_i| Dice(G_i, S*(G_i))
    pred_dice: float = 0.0  # sum_j |S_j| Dice(G*(S_j), S_j)
    gt_hausdorff: float = 0.0  # sum_i |G_i| H(G_i, S*(G_i))
    pred_hausdorff: float = 0.0  # sum_j |S_j| H(G*(S_j), S_j)

    def __iadd__(self, other: ObjectSums) -> ObjectSums:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 1.0

    def _halves(self, gt_sum: float, pred_sum: float, empty: float) -> float:
        halves = [s / area for s, area in ((gt_sum, self.gt_area), (pred_sum, self.pred_area)) if area > 0]
        return float(np.mean(halves)) if halves else empty

    @property
    def dice(self) -> float:
        return self._halves(self.gt_dice, self.pred_dice, empty=1.0)

    @property
    def hausdorff(self) -> float:
        return self._halves(self.gt_hausdorff, self.pred_hausdorff, empty=0.0)


def _one_side(ref: _Objects, other: _Objects, table: np.ndarray, diagonal: float,
              with_hausdorff: bool) -> tuple[float, float]:
    """``(sum |R| Dice, sum |R| H)`` over the objects R of ``ref``; ``table`` has ``ref`` on the rows."""
    dice_sum = haus_sum = 0.0
    for i in range(1, ref.n + 1):
        overlaps = table[i, 1:]
        area = float(ref.area[i - 1])
        if other.n and overlaps.max() > 0:
            j = int(overlaps.argmax()) + 1
            dice_sum += area * 2 * overlaps[j - 1] / (ref.area[i - 1] + other.area[j - 1])
            if with_hausdorff:
                haus_sum += area * hausdorff(ref, i, other, j)
        elif with_hausdorff:
            haus_sum += area * (nearest_hausdorff(ref, i, other) if other.n else diagonal)
    return dice_sum, haus_sum


def object_sums(gt: np.ndarray, pred: np.ndarray, with_hausdorff: bool = True) -> ObjectSums:
    """The GlaS sums of one image; ``gt`` and ``pred`` are instance label maps of equal shape.

    ``with_hausdorff=False`` skips the distances (the Hausdorff sums are then NaN).
    """
    if gt.shape != pred.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    g, s = _Objects(gt), _Objects(pred)
    table = contingency(gt, pred)
    diagonal = float(np.hypot(*gt.shape))
    tp, fp, fn = object_f1_counts(gt, pred)
    gt_dice, gt_h = _one_side(g, s, table, diagonal, with_hausdorff)
    pred_dice, pred_h = _one_side(s, g, table.T, diagonal, with_hausdorff)
    nan = float("nan")
    return ObjectSums(tp=tp, fp=fp, fn=fn, gt_area=float(g.area.sum()), pred_area=float(s.area.sum()),
                      gt_dice=gt_dice, pred_dice=pred_dice,
                      gt_hausdorff=gt_h if with_hausdorff else nan, pred_hausdorff=pred_h if with_hausdorff else nan)
