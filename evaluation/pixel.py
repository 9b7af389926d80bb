"""Pooled pixel metrics for binary gland segmentation (the paper's and the original code's protocol).

Counts are accumulated over all pixels of all images before dividing ("pooled"), so large
images weigh more, exactly as the original ``get_miou_score`` did:

    IoU_c = sum_i |P_i = c  and  G_i = c| / sum_i |P_i = c  or  G_i = c|,   c in {background, gland}
    mIoU  = (IoU_background + IoU_gland) / 2
    Dice  = 2 sum_i |P_i and G_i| / (sum_i |P_i| + sum_i |G_i|)          (gland class)

With no gland on either side, Dice is 1 (prediction and ground truth agree). ``details`` adds pooled
gland precision, recall and the predicted and true gland fractions of all pixels.
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
    pixels: int = 0

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
        self.pixels += int(pred.size)

    def __iadd__(self, other: PooledCounts) -> PooledCounts:
        """Add another set's counts (pooling two sets is pooling their images)."""
        self.inter = self.inter + other.inter
        self.union = self.union + other.union
        self.pred_fg += other.pred_fg
        self.gt_fg += other.gt_fg
        self.pixels += other.pixels
        return self

    def iou(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.union > 0, self.inter / np.maximum(self.union, 1), np.nan)

    def miou(self) -> float:
        return float(np.nanmean(self.iou()))

    def dice(self) -> float:
        denom = self.pred_fg + self.gt_fg
        return float(2 * self.inter[1] / denom) if denom else 1.0

    def details(self) -> dict[str, float]:
        """Pooled gland precision and recall, predicted and true gland fraction of all pixels."""
        return {"precision": float(self.inter[1] / self.pred_fg) if self.pred_fg else float("nan"),
                "recall": float(self.inter[1] / self.gt_fg) if self.gt_fg else float("nan"),
                "pred_fraction": self.pred_fg / max(self.pixels, 1),
                "gt_fraction": self.gt_fg / max(self.pixels, 1)}


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
