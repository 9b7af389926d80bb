"""Segmentation metrics, in one place for SPM proposals and MSG predictions.

Pooled pixel metrics for binary gland segmentation (the paper's and the original code's protocol).

Counts are accumulated over all pixels of all images before dividing ("pooled"), so large
images weigh more, exactly as the original ``get_miou_score`` did:

    IoU_c = sum_i |P_i = c  and  G_i = c| / sum_i |P_i = c  or  G_i = c|,   c in {background, gland}
    mIoU  = (IoU_background + IoU_gland) / 2
    Dice  = 2 sum_i |P_i and G_i| / (sum_i |P_i| + sum_i |G_i|)          (gland class)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PooledCounts:
    """Running intersection/union counts for the two classes (0 background, 1 gland)."""

    inter: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))
    union: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))
    pred_fg: int = 0
    gt_fg: int = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image; ``pred`` and ``gt`` are boolean gland masks of equal shape."""
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        pred = pred.astype(bool)
        gt = gt.astype(bool)
        inter, union = image_counts(pred, gt)
        self.inter += inter
        self.union += union
        self.pred_fg += int(pred.sum())
        self.gt_fg += int(gt.sum())

    def iou(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.union > 0, self.inter / np.maximum(self.union, 1), np.nan)

    def miou(self) -> float:
        return float(np.nanmean(self.iou()))

    def dice(self) -> float:
        denom = self.pred_fg + self.gt_fg
        return float(2 * self.inter[1] / denom) if denom else float("nan")


def image_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (background, gland) intersection and union pixel counts of one image."""
    fg_inter = np.count_nonzero(pred & gt)
    fg_union = np.count_nonzero(pred | gt)
    bg_inter = pred.size - fg_union
    bg_union = pred.size - fg_inter
    return np.array([bg_inter, fg_inter], np.int64), np.array([bg_union, fg_union], np.int64)


def pooled_metrics(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """mIoU, per-class IoU and gland Dice pooled over ``(pred, gt)`` boolean mask pairs."""
    counts = PooledCounts()
    for pred, gt in pairs:
        counts.update(pred, gt)
    iou = counts.iou()
    return {"mIoU": counts.miou(), "IoU_background": float(iou[0]), "IoU_gland": float(iou[1]),
            "Dice": counts.dice()}


# ---- GlaS object-level metrics (Sirinukunwattana et al., 2017) -----------------------------------
# Objects are instance ids when the GT has them, otherwise 8-connected components. Per image:
#   F1:        a segmented object S_j is a true positive when it matches a GT object with IoU > 0.5
#              (IoU > 0.5 makes the matching one-to-one); TP/FP/FN are summed over the images.
#   Dice_obj = 1/2 [ sum_i g_i Dice(G_i, S*(G_i)) + sum_j s_j Dice(G*(S_j), S_j) ]
#   H_obj    = 1/2 [ sum_i g_i H(G_i, S*(G_i))    + sum_j s_j H(G*(S_j), S_j) ]
#              g_i = |G_i| / sum |G|, s_j = |S_j| / sum |S|; S*(G_i) is the segmented object
#              overlapping G_i most (Dice 0 if none; for H, the nearest object by Hausdorff distance);
#              if one side has no object at all, H uses the image diagonal. Both are averaged over images.

_EIGHT = np.ones((3, 3), bool)


def label_objects(mask: np.ndarray) -> np.ndarray:
    """Instance labels: the mask's own ids if it has several positive values, else 8-connected components."""
    from scipy import ndimage

    values = np.unique(mask)
    positive = values[values > 0]
    if positive.size > 1:  # an instance map: relabel ids to 1..n
        out = np.zeros(mask.shape, np.int32)
        for new, old in enumerate(positive, start=1):
            out[mask == old] = new
        return out
    return ndimage.label(mask > 0, structure=_EIGHT)[0]


def _overlaps(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Contingency table ``(n_gt + 1, n_pred + 1)`` of pixel counts (row/col 0 = background)."""
    n_gt, n_pred = int(gt.max()), int(pred.max())
    table = np.bincount(gt.ravel().astype(np.int64) * (n_pred + 1) + pred.ravel(), minlength=(n_gt + 1) * (n_pred + 1))
    return table.reshape(n_gt + 1, n_pred + 1)


def object_f1_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """(TP, FP, FN) for instance label maps ``gt`` and ``pred`` (IoU > 0.5 matching)."""
    table = _overlaps(gt, pred)
    inter = table[1:, 1:]
    size_gt = table[1:, :].sum(1)
    size_pred = table[:, 1:].sum(0)
    union = size_gt[:, None] + size_pred[None, :] - inter
    matched = (inter / np.maximum(union, 1)) > 0.5
    tp = int(matched.any(0).sum())
    return tp, len(size_pred) - tp, len(size_gt) - int(matched.any(1).sum())


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import ndimage

    d_to_b = ndimage.distance_transform_edt(~b)
    d_to_a = ndimage.distance_transform_edt(~a)
    return float(max(d_to_b[a].max(), d_to_a[b].max()))


def _one_side(ref: np.ndarray, other: np.ndarray, table: np.ndarray, hausdorff: bool) -> tuple[float, float]:
    """Weighted sums over objects of ``ref`` of Dice and Hausdorff to their best match in ``other``.

    ``table`` is the contingency table with ``ref`` on the rows.
    """
    n_ref, n_other = table.shape[0] - 1, table.shape[1] - 1
    sizes = table[1:, :].sum(1)
    total = sizes.sum()
    diag = float(np.hypot(*ref.shape))
    dice_sum = haus_sum = 0.0
    for i in range(1, n_ref + 1):
        weight = sizes[i - 1] / total
        obj = ref == i
        overlaps = table[i, 1:]
        if n_other and overlaps.max() > 0:
            j = int(np.argmax(overlaps)) + 1
            match = other == j
            dice_sum += weight * 2 * overlaps[j - 1] / (sizes[i - 1] + match.sum())
            if hausdorff:
                haus_sum += weight * _hausdorff(obj, match)
        elif hausdorff:
            haus_sum += weight * (min(_hausdorff(obj, other == j) for j in range(1, n_other + 1)) if n_other else diag)
    return dice_sum, haus_sum


def object_dice_hausdorff(gt: np.ndarray, pred: np.ndarray, hausdorff: bool = True) -> tuple[float, float]:
    """GlaS object Dice and object Hausdorff of one image (instance label maps)."""
    if gt.max() == 0 and pred.max() == 0:
        return 1.0, 0.0
    table = _overlaps(gt, pred)
    if gt.max() == 0 or pred.max() == 0:
        return 0.0, float(np.hypot(*gt.shape)) if hausdorff else float("nan")
    d_gt, h_gt = _one_side(gt, pred, table, hausdorff)
    d_pred, h_pred = _one_side(pred, gt, table.T, hausdorff)
    return 0.5 * (d_gt + d_pred), (0.5 * (h_gt + h_pred) if hausdorff else float("nan"))
