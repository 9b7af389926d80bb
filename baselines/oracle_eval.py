"""ORACLE score of cluster maps: pooled mIoU / Dice after mapping each image's clusters by majority vote.

    python baselines/oracle_eval.py CLUSTER_ID_DIR GT_DIR [--csv per_image.csv]

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

if __package__ in (None, ""):  # run as `python baselines/oracle_eval.py`: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])
if str(Path(__file__).resolve().parents[1] / "tools") not in sys.path:  # tools/eval_proposals.py
    sys.path.append(str(Path(__file__).resolve().parents[1] / "tools"))

from eval_proposals import FIELDS, run_reporting_errors
from eval_proposals import _fmt as metric_fields

from baselines.sgscn_clustering import oracle_majority_labels
from evaluation.pixel import PooledCounts
from SPM.io import InputError, find_ground_truth, is_image_file, list_files, read_mask, read_mask_for, write_csv


def evaluate_oracle(cluster_dir: str | Path, gt_dir: str | Path) -> tuple[PooledCounts, list[dict], list[str]]:
    """Returns ``(pooled counts, per-image rows, error lines)`` of the majority-vote oracle."""
    pooled = PooledCounts()
    rows: list[dict] = []
    errors: list[str] = []
    for path in list_files(cluster_dir):
        if not is_image_file(path):
            continue
        try:
            labels = read_mask(path)
            gt = read_mask_for(find_ground_truth(gt_dir, path.stem), labels.shape, "no such file") > 0
        except InputError as err:
            errors.append(str(err))
            continue
        pred = oracle_majority_labels(labels, gt)
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        rows.append({"image": path.stem, **metric_fields(one), "pred_fraction": f"{pred.mean():.4f}",
                     "gt_fraction": f"{gt.mean():.4f}"})
    return pooled, rows, errors


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Majority-vote ORACLE mIoU / Dice of per-image cluster maps")
    p.add_argument("cluster_dir", help="raw cluster ids, one gray PNG per image (SGSCN's cluster_id/)")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    args = p.parse_args(argv)
    outcome = run_reporting_errors(evaluate_oracle, args.cluster_dir, args.gt_dir)
    if outcome is None:
        return 2
    pooled, rows, rc = outcome
    if args.csv:
        write_csv(args.csv, [*rows, {"image": "POOLED", **metric_fields(pooled)}], FIELDS)
    m = metric_fields(pooled)
    print(f"ORACLE (majority vote per cluster, uses the GT) images: {len(rows)}  mIoU: {m['mIoU']}  "
          f"IoU_bg: {m['IoU_background']}  IoU_gland: {m['IoU_gland']}  Dice: {m['Dice']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
