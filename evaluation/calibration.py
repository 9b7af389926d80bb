"""Reliability of gland probabilities: how often a pixel the model gives probability ``p`` is gland.

A segmentation that is wrong where it is unsure can be repaired by thresholds, ignore bands or
confidence-weighted self-training; one that is wrong where it is sure cannot. The reliability table
tells which: pixels are pooled over a set into probability bins, and each bin gives its share of the
pixels, its mean predicted probability and how many of its pixels are gland in the ground truth (the
bin's precision). The expected calibration error (ECE) is the pixel-weighted mean gap between the
last two:

    ECE = sum_b (n_b / N) |gland_b / n_b - mean_p_b|

Probability maps are 8-bit images, value ``v`` meaning ``p = v / 255`` (``tools/predict.py
--probabilities`` writes them); a 0/255 mask is the special case of a model that is always sure.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.io import read_probability
from evaluation.folders import Pairing, iter_read_pairs
from evaluation.groups import pool_by_group

DEFAULT_EDGES = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
RELIABILITY_FIELDS = ("bin", "pixel_share", "mean_probability", "gland_frequency")


def check_edges(edges: Sequence[float]) -> np.ndarray:
    """``edges`` as a float array: strictly increasing, from 0 to 1 (raises ValueError otherwise)."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2 or e[0] != 0.0 or e[-1] != 1.0 or (np.diff(e) <= 0).any():
        raise ValueError(f"bin edges must increase strictly from 0 to 1, got {list(edges)}")
    return e


@dataclass
class ReliabilityCounts:
    """Pooled per-bin counts; bin ``b`` holds ``edges[b] <= p < edges[b + 1]`` (the last bin includes 1)."""

    edges: np.ndarray = field(default_factory=lambda: np.asarray(DEFAULT_EDGES))
    pixels: np.ndarray = field(init=False)  # (B,) int64
    gland: np.ndarray = field(init=False)  # (B,) int64: of those, gland in the ground truth
    probability_sum: np.ndarray = field(init=False)  # (B,) float64

    def __post_init__(self) -> None:
        self.edges = check_edges(self.edges)
        bins = len(self.edges) - 1
        self.pixels = np.zeros(bins, np.int64)
        self.gland = np.zeros(bins, np.int64)
        self.probability_sum = np.zeros(bins, np.float64)

    def update(self, probability: np.ndarray, gt: np.ndarray) -> None:
        """Add one image: ``probability`` (H, W) floats in [0, 1], ``gt`` (H, W) boolean gland mask."""
        if probability.shape != gt.shape:
            raise ValueError(f"probabilities {probability.shape} and ground truth {gt.shape} differ in shape")
        p = probability.ravel().astype(np.float64)
        index = np.clip(np.searchsorted(self.edges, p, side="right") - 1, 0, len(self.pixels) - 1)
        bins = len(self.pixels)
        self.pixels += np.bincount(index, minlength=bins)
        self.gland += np.bincount(index, weights=gt.ravel().astype(np.float64), minlength=bins).astype(np.int64)
        self.probability_sum += np.bincount(index, weights=p, minlength=bins)

    def __iadd__(self, other: ReliabilityCounts) -> ReliabilityCounts:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot pool reliability counts of different bins")
        self.pixels = self.pixels + other.pixels
        self.gland = self.gland + other.gland
        self.probability_sum = self.probability_sum + other.probability_sum
        return self

    def ece(self) -> float:
        """Expected calibration error over the non-empty bins (NaN for no pixel)."""
        total = self.pixels.sum()
        if total == 0:
            return float("nan")
        filled = self.pixels > 0
        gap = np.abs(self.gland[filled] - self.probability_sum[filled]) / self.pixels[filled]
        return float((self.pixels[filled] / total * gap).sum())

    def rows(self) -> list[dict[str, str]]:
        """One row per bin (``RELIABILITY_FIELDS``): ``pixel_share`` of all pixels, the bin's mean
        probability and gland frequency (empty where the bin holds no pixel)."""
        total = max(int(self.pixels.sum()), 1)
        out = []
        for b, n in enumerate(self.pixels):
            lo, hi = self.edges[b], self.edges[b + 1]
            closing = "]" if b == len(self.pixels) - 1 else ")"
            out.append({"bin": f"[{lo:g}, {hi:g}{closing}", "pixel_share": f"{n / total:.4f}",
                        "mean_probability": f"{self.probability_sum[b] / n:.4f}" if n else "",
                        "gland_frequency": f"{self.gland[b] / n:.4f}" if n else ""})
        return out


def score_reliability(prob_dir: str | Path, gt_dir: str | Path, edges: Sequence[float] = DEFAULT_EDGES,
                      pred_suffix: str = "") -> tuple[ReliabilityCounts, list[dict], Pairing]:
    """Pooled reliability counts of a folder of probability maps against their masks: ``(pooled, rows,
    pairing)``; each row is ``{"image": stem, "reliability": that image's counts}``."""
    pooled = ReliabilityCounts(np.asarray(edges, dtype=np.float64))
    rows: list[dict] = []
    pairing = Pairing()
    for stem, probability, gt_raw in iter_read_pairs(prob_dir, gt_dir, pairing, read_probability, pred_suffix):
        one = ReliabilityCounts(pooled.edges)
        one.update(probability, gt_raw > 0)
        pooled += one
        rows.append({"image": stem, "reliability": one})
    return pooled, rows, pairing


def group_reliability(rows: Iterable[Mapping], groups: Mapping[str, str]) -> dict[str, tuple[int, ReliabilityCounts]]:
    """``{group: (images, pooled reliability counts)}`` of the rows, in sorted group order (images
    missing from ``groups`` form the group ``UNLISTED``)."""
    return pool_by_group(rows, groups, "reliability", lambda counts: ReliabilityCounts(counts.edges))
