"""Evaluate gland masks against GlaS ground truth: the paper's pooled metrics and GlaS object metrics.

    python tools/evaluate.py PRED_DIR GT_DIR [--csv per_image.csv] [--no-hausdorff]

Prediction > 0 is gland; GT > 0 is gland, with its instance ids as objects when it has them,
connected components (8-neighbourhood) otherwise. Prints pooled mIoU and Dice (the MSSG paper's
protocol) and object F1 (IoU > 0.5 matching; TP/FP/FN summed over images), object Dice and object
Hausdorff (per image, averaged); formulas in ``SPM/metrics.py``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_proposals import iter_pairs, run_reporting_errors

from SPM.io import write_csv
from SPM.metrics import PooledCounts, label_objects, object_dice_hausdorff, object_f1_counts

FIELDS = ("image", "mIoU", "Dice", "obj_TP", "obj_FP", "obj_FN", "obj_F1", "obj_Dice", "obj_Hausdorff")


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def evaluate(pred_dir: str | Path, gt_dir: str | Path, hausdorff: bool = True) -> tuple[dict, list[dict], list[str]]:
    """Returns ``(summary metrics, per-image rows, error lines)``."""
    pooled = PooledCounts()
    rows, errors = [], []
    totals = np.zeros(3, np.int64)
    dices, hauss = [], []
    for stem, pred, gt_raw in iter_pairs(pred_dir, gt_dir, errors):
        gt = gt_raw > 0
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        gt_objects, pred_objects = label_objects(gt_raw), label_objects(pred)
        counts = object_f1_counts(gt_objects, pred_objects)
        totals += counts
        d, h = object_dice_hausdorff(gt_objects, pred_objects, hausdorff)
        dices.append(d)
        hauss.append(h)
        rows.append({"image": stem, "mIoU": f"{one.miou():.4f}", "Dice": f"{one.dice():.4f}",
                     "obj_TP": counts[0], "obj_FP": counts[1], "obj_FN": counts[2],
                     "obj_F1": f"{f1(*counts):.4f}", "obj_Dice": f"{d:.4f}", "obj_Hausdorff": f"{h:.2f}"})
    summary = {"images": len(rows), "mIoU": pooled.miou(), "Dice": pooled.dice(),
               "obj_F1": f1(*totals.tolist()), "obj_Dice": float(np.mean(dices)) if dices else float("nan"),
               "obj_Hausdorff": float(np.mean(hauss)) if hauss else float("nan")}
    return summary, rows, errors


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU/Dice and GlaS object F1/Dice/Hausdorff")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--no-hausdorff", dest="hausdorff", action="store_false", help="skip the (slower) Hausdorff")
    args = p.parse_args(argv)
    outcome = run_reporting_errors(evaluate, args.pred_dir, args.gt_dir, args.hausdorff)
    if outcome is None:
        return 2
    summary, rows, rc = outcome
    if args.csv:
        write_csv(args.csv, rows, FIELDS)
    print(f"images: {summary['images']}  mIoU: {summary['mIoU']:.4f}  Dice: {summary['Dice']:.4f}  "
          f"obj_F1: {summary['obj_F1']:.4f}  obj_Dice: {summary['obj_Dice']:.4f}  "
          f"obj_Hausdorff: {summary['obj_Hausdorff']:.2f}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
