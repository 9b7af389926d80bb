"""ORACLE score of cluster maps: pooled mIoU / Dice after mapping each image's clusters by majority vote.

    python baselines/oracle_eval.py CLUSTER_ID_DIR GT_DIR [--csv per_image.csv]
    python baselines/oracle_eval.py CLUSTER_ID_DIR GT_DIR --set-level [--oracle majority|hungarian]

``--set-level`` (for cluster ids that are global over the set, as PiCIE's) maps each cluster once for the
whole set (:func:`baselines.picie_training.set_level_oracle`): ``majority`` (many-to-one: gland when most of its
pixels over the set are gland) or ``hungarian`` (one-to-one, PiCIE's protocol: exactly one cluster is gland).

Per image, every cluster becomes gland when more than half of its pixels are gland in the ground truth
(:func:`baselines.sgscn_clustering.oracle_majority_labels`). This uses the labels, so it is an upper bound for any
label-free cluster-to-gland rule, not an unsupervised result. ``CLUSTER_ID_DIR`` holds raw cluster ids
(``baselines/SGSCN.py``'s ``cluster_id/``, one gray PNG per image); ground truth > 0 is gland, as
``NAME.png`` or ``NAME_anno.bmp``. Metrics, output and exit codes are those of ``tools/eval_proposals.py``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python baselines/oracle_eval.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])
if str(Path(__file__).resolve().parents[1] / "tools") not in sys.path:  # tools/eval_proposals.py
    sys.path.append(str(Path(__file__).resolve().parents[1] / "tools"))

from eval_proposals import FIELDS, run_reporting_errors
from eval_proposals import _fmt as metric_fields

from baselines.sgscn_clustering import oracle_majority_labels
from evaluation.pixel import PooledCounts
from SPM.io import InputError, find_ground_truth, is_image_file, list_files, read_mask, read_mask_for, write_csv


def read_cluster_maps(cluster_dir: str | Path, gt_dir: str | Path
                      ) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[str]]:
    """``(names, cluster-id maps, boolean GT masks, error lines)`` of every image file in ``cluster_dir``."""
    names, labels, gts, errors = [], [], [], []
    for path in list_files(cluster_dir):
        if not is_image_file(path):
            continue
        try:
            lab = read_mask(path)
            gt = read_mask_for(find_ground_truth(gt_dir, path.stem), lab.shape, "no such file") > 0
        except InputError as err:
            errors.append(str(err))
            continue
        names.append(path.stem)
        labels.append(lab)
        gts.append(gt)
    return names, labels, gts, errors


def score_masks(names: list[str], preds: list[np.ndarray], gts: list[np.ndarray]) -> tuple[PooledCounts, list[dict]]:
    """Pooled counts and per-image rows of boolean oracle masks against boolean GT masks."""
    pooled = PooledCounts()
    rows: list[dict] = []
    for name, pred, gt in zip(names, preds, gts, strict=True):
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        rows.append({"image": name, **metric_fields(one), "pred_fraction": f"{pred.mean():.4f}",
                     "gt_fraction": f"{gt.mean():.4f}"})
    return pooled, rows


def evaluate_oracle(cluster_dir: str | Path, gt_dir: str | Path) -> tuple[PooledCounts, list[dict], list[str]]:
    """Returns ``(pooled counts, per-image rows, error lines)`` of the majority-vote oracle."""
    names, labels, gts, errors = read_cluster_maps(cluster_dir, gt_dir)
    preds = [oracle_majority_labels(lab, gt) for lab, gt in zip(labels, gts, strict=True)]
    return (*score_masks(names, preds, gts), errors)


def evaluate_set_oracle(cluster_dir: str | Path, gt_dir: str | Path, mode: str = "majority"
                        ) -> tuple[PooledCounts, list[dict], list[str]]:
    """As :func:`evaluate_oracle` with one cluster-to-gland mapping for the whole set (``mode``: majority or
    hungarian, :func:`baselines.picie_training.set_level_oracle`)."""
    from baselines.picie_training import set_level_oracle

    names, labels, gts, errors = read_cluster_maps(cluster_dir, gt_dir)
    return (*score_masks(names, set_level_oracle(labels, gts, mode=mode), gts), errors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Majority-vote ORACLE mIoU / Dice of per-image cluster maps")
    p.add_argument("cluster_dir", help="raw cluster ids, one gray PNG per image (SGSCN's cluster_id/)")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--set-level", action="store_true",
                   help="one mapping for the whole set (global cluster ids, e.g. PiCIE's) instead of per image")
    p.add_argument("--oracle", choices=("majority", "hungarian"), default="majority",
                   help="with --set-level: many-to-one majority vote, or one-to-one Hungarian (PiCIE's protocol)")
    args = p.parse_args(argv)
    if args.oracle != "majority" and not args.set_level:
        p.error("--oracle hungarian needs --set-level")
    if args.set_level:
        outcome = run_reporting_errors(evaluate_set_oracle, args.cluster_dir, args.gt_dir, args.oracle)
    else:
        outcome = run_reporting_errors(evaluate_oracle, args.cluster_dir, args.gt_dir)
    if outcome is None:
        return 2
    pooled, rows, rc = outcome
    if args.csv:
        write_csv(args.csv, [*rows, {"image": "POOLED", **metric_fields(pooled)}], FIELDS)
    m = metric_fields(pooled)
    kind = f"{args.oracle}, set-level" if args.set_level else "majority vote per cluster per image"
    print(f"ORACLE ({kind}, uses the GT) images: {len(rows)}  mIoU: {m['mIoU']}  "
          f"IoU_bg: {m['IoU_background']}  IoU_gland: {m['IoU_gland']}  Dice: {m['Dice']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
