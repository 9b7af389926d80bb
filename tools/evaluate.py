"""Evaluate gland masks against GlaS ground truth: the paper's pooled metrics and GlaS object metrics.

    python tools/evaluate.py PRED_DIR GT_DIR [--csv per_image.csv] [--no-hausdorff] [--threshold T]

Prediction > 0 is gland, its objects the 8-connected components; predictions must be binary masks
(or 0/1/2 SPM proposal maps), anything else is an error naming the file unless ``--threshold T``
(gland = value > T) is given. Ground truth > 0 is gland; its
objects are its instance ids when it has them (the official ``*_anno.bmp``, or masks written by
``tools/prepare_glas.py``), else connected components, with a one-line notice that touching
glands then merge. Prints pooled mIoU and gland Dice (the MSSG paper's protocol) and the GlaS
challenge's object F1 (50% rule), object Dice and object Hausdorff, all over the whole set
(definitions in ``evaluation/glas_objects.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_proposals import iter_pairs, run_reporting_errors

from evaluation.glas_objects import ObjectSums, is_instance_map, label_objects, object_sums
from evaluation.pixel import PooledCounts
from SPM.io import write_csv

FIELDS = ("image", "mIoU", "Dice", "obj_TP", "obj_FP", "obj_FN", "obj_F1", "obj_Dice", "obj_Hausdorff")
BINARY_GT_NOTICE = "binary ground truth: objects are its connected components, so touching glands merge"


def evaluate(pred_dir: str | Path, gt_dir: str | Path, hausdorff: bool = True, threshold: float | None = None
             ) -> tuple[dict, list[dict], list[str]]:
    """Returns ``(summary metrics, per-image rows, error lines)``; ``summary["notices"]`` lists notices."""
    pooled = PooledCounts()
    objects = ObjectSums()
    rows, errors = [], []
    binary_gt = False
    for stem, pred, gt_raw in iter_pairs(pred_dir, gt_dir, errors, threshold=threshold, proposals=True):
        gt = gt_raw > 0
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        binary_gt |= gt.any() and not is_instance_map(gt_raw)
        sums = object_sums(label_objects(gt_raw), label_objects(pred), hausdorff)
        objects += sums
        rows.append({"image": stem, "mIoU": f"{one.miou():.4f}", "Dice": f"{one.dice():.4f}",
                     "obj_TP": sums.tp, "obj_FP": sums.fp, "obj_FN": sums.fn, "obj_F1": f"{sums.f1:.4f}",
                     "obj_Dice": f"{sums.dice:.4f}", "obj_Hausdorff": f"{sums.hausdorff:.2f}"})
    summary = {"images": len(rows), "mIoU": pooled.miou(), "Dice": pooled.dice(), "obj_F1": objects.f1,
               "obj_Dice": objects.dice, "obj_Hausdorff": objects.hausdorff,
               "notices": [f"{gt_dir}: {BINARY_GT_NOTICE}"] if binary_gt else []}
    return summary, rows, errors


def summary_line(summary: dict) -> str:
    return (f"images: {summary['images']}  mIoU: {summary['mIoU']:.4f}  Dice: {summary['Dice']:.4f}  "
            f"obj_F1: {summary['obj_F1']:.4f}  obj_Dice: {summary['obj_Dice']:.4f}  "
            f"obj_Hausdorff: {summary['obj_Hausdorff']:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU/Dice and GlaS object F1/Dice/Hausdorff")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--no-hausdorff", dest="hausdorff", action="store_false", help="skip the (slower) Hausdorff")
    p.add_argument("--threshold", type=float, help="score value > THRESHOLD as gland (soft or multi-valued maps)")
    args = p.parse_args(argv)
    outcome = run_reporting_errors(evaluate, args.pred_dir, args.gt_dir, args.hausdorff, args.threshold)
    if outcome is None:
        return 2
    summary, rows, rc = outcome
    if args.csv:
        write_csv(args.csv, rows, FIELDS)
    for notice in summary["notices"]:
        print(f"note: {notice}", file=sys.stderr)
    print(summary_line(summary))
    return rc


if __name__ == "__main__":
    sys.exit(main())
