"""ORACLE scores of cluster maps (they use the ground truth: upper bounds for any label-free
cluster-to-gland rule, never an unsupervised result): per-image majority vote (SGSCN and SPM cluster
maps) and one set-level mapping (majority or PiCIE's one-to-one Hungarian, for global cluster ids)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.io import InputError, find_ground_truth, is_image_file, list_files, read_mask, read_mask_for
from evaluation.folders import Pairing, score_mask_pairs
from evaluation.pixel import PooledCounts


def oracle_majority_labels(labels: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """ORACLE (uses the ground truth; for evaluation only): each cluster of this image becomes gland when
    more than half of its pixels are gland in ``gt`` (a tie is background) — the per-image majority-vote
    mapping by which unsupervised segmentation papers score cluster maps.

    Args:
        labels: ``(H, W)`` non-negative integer cluster ids.
        gt: ``(H, W)`` ground truth, nonzero = gland.

    Returns:
        ``(H, W)`` bool gland mask.
    """
    if labels.shape != gt.shape:
        raise ValueError(f"labels {labels.shape} and ground truth {gt.shape} differ in shape")
    flat = labels.ravel().astype(np.intp)
    sizes = np.bincount(flat)
    gland = np.bincount(flat, weights=(gt.ravel() != 0).astype(np.float64), minlength=sizes.size)
    return (2 * gland > sizes)[labels.astype(np.intp)]


def set_level_oracle(cluster_ids: Sequence[np.ndarray], gts: Sequence[np.ndarray], k: int | None = None,
                     mode: str = "majority") -> list[np.ndarray]:
    """ORACLE (uses the ground truth): one cluster-to-gland mapping for the whole set (PiCIE's ids are global).

    ``"majority"`` (many-to-one): a cluster is gland when more than half of its pixels over the set are
    gland. ``"hungarian"`` (one-to-one, PiCIE's ``evaluate``): ``linear_sum_assignment`` on the ``(k, 2)``
    pooled confusion maximising matched pixels; exactly one cluster becomes gland, the others
    background (with ``k = 2`` this is PiCIE's protocol exactly).

    Args:
        cluster_ids: ``(H_i, W_i)`` non-negative int arrays.
        gts: ``(H_i, W_i)`` ground truth, nonzero = gland.
        k: number of clusters (default: max id + 1).

    Returns:
        ``(H_i, W_i)`` bool gland masks.
    """
    if len(cluster_ids) != len(gts):
        raise ValueError(f"{len(cluster_ids)} cluster maps but {len(gts)} ground truths")
    k = k if k is not None else int(max((int(c.max()) for c in cluster_ids), default=0)) + 1
    conf = np.zeros((k, 2), np.int64)
    for c, g in zip(cluster_ids, gts, strict=True):
        if c.shape != g.shape:
            raise ValueError(f"labels {c.shape} and ground truth {g.shape} differ in shape")
        flat = c.ravel().astype(np.intp)
        gland = (g.ravel() != 0)
        conf[:, 1] += np.bincount(flat[gland], minlength=k)[:k]
        conf[:, 0] += np.bincount(flat[~gland], minlength=k)[:k]
    if mode == "majority":
        is_gland = conf[:, 1] > conf[:, 0]
    elif mode == "hungarian":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(conf, maximize=True)
        is_gland = np.zeros(k, bool)
        is_gland[rows[cols == 1]] = True
    else:
        raise ValueError(f"mode must be 'majority' or 'hungarian', got {mode!r}")
    return [is_gland[c.astype(np.intp)] for c in cluster_ids]


def read_cluster_maps(cluster_dir: str | Path, gt_dir: str | Path
                      ) -> tuple[list[str], list[np.ndarray], list[np.ndarray], Pairing]:
    """``(names, cluster-id maps, boolean GT masks, pairing)`` of every image file in ``cluster_dir``."""
    names, labels, gts = [], [], []
    pairing = Pairing()
    for path in list_files(cluster_dir):
        if not is_image_file(path):
            continue
        try:
            lab = read_mask(path)
            gt = read_mask_for(find_ground_truth(gt_dir, path.stem), lab.shape, "no such file") > 0
        except InputError as err:
            pairing.errors.append(str(err))
            continue
        names.append(path.stem)
        labels.append(lab)
        gts.append(gt)
    return names, labels, gts, pairing


def score_oracle(cluster_dir: str | Path, gt_dir: str | Path, set_level: bool = False, mode: str = "majority"
                 ) -> tuple[PooledCounts, list[dict], Pairing]:
    """Pooled counts, per-image rows and pairing of the per-image (or, with ``set_level``, the set-level
    ``mode``) oracle masks of ``cluster_dir``."""
    names, labels, gts, pairing = read_cluster_maps(cluster_dir, gt_dir)
    if set_level:
        preds = set_level_oracle(labels, gts, mode=mode)
    else:
        preds = [oracle_majority_labels(lab, gt) for lab, gt in zip(labels, gts, strict=True)]
    pooled, rows = score_mask_pairs(zip(names, preds, gts, strict=True))
    return pooled, rows, pairing
