"""Evaluate gland masks against GlaS ground truth: the paper's pooled metrics and GlaS object metrics.

    python tools/evaluate.py PRED_DIR GT_DIR [--csv per_image.csv] [--no-hausdorff] [--threshold T]
                             [--details] [--allow-missing] [--groups Grade.csv [--group-column NAME]]

Prediction > 0 is gland, its objects the 8-connected components; predictions must be binary masks
(or 0/1/2 SPM proposal maps), anything else is an error naming the file unless ``--threshold T``
(gland = value > T) is given. Ground truth > 0 is gland; its objects are its instance ids when it has
them (the official ``*_anno.bmp``, or masks written by ``tools/prepare_glas.py``), else connected
components, with a one-line notice that touching glands then merge. Prints pooled mIoU and gland
Dice (the MSSG paper's protocol) and the GlaS challenge's object F1 (50% rule), object Dice and
object Hausdorff, all over the whole set (``evaluation/``); ``--details`` adds pooled precision,
recall and gland fractions; ``--groups TABLE`` adds the same metrics over each group of images (GlaS's
``Grade.csv``: benign and malignant by default, the finer grades with ``--group-column``). Two
predictions of one stem are refused; ground-truth images without a prediction fail the run unless
``--allow-missing``.
"""
from __future__ import annotations

import argparse
import sys

from common.io import InputError
from evaluation.folders import (
    OBJECT_FIELDS,
    details_line,
    run_reporting_errors,
    score_objects,
    summary_line,
    write_table,
)
from evaluation.groups import add_group_arguments, group_line, group_scores, read_groups, with_group_column


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU/Dice and GlaS object F1/Dice/Hausdorff")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--no-hausdorff", dest="hausdorff", action="store_false", help="skip the (slower) Hausdorff")
    p.add_argument("--threshold", type=float, help="score value > THRESHOLD as gland (soft or multi-valued maps)")
    p.add_argument("--details", action="store_true", help="also pooled precision, recall and gland fractions")
    add_group_arguments(p)
    p.add_argument("--allow-missing", action="store_true", help="score although some GT images have no prediction")
    args = p.parse_args(argv)
    try:
        groups = read_groups(args.groups, args.group_column) if args.groups else None
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    outcome = run_reporting_errors(score_objects, args.pred_dir, args.gt_dir, args.hausdorff, args.threshold,
                                   allow_missing=args.allow_missing)
    if outcome is None:
        return 2
    summary, rows, rc = outcome
    for notice in summary["notices"]:
        print(f"note: {notice}", file=sys.stderr)
    print(summary_line(summary))
    if args.details:
        print(details_line(summary["pixels"]))
    if groups is not None:
        for name, entry in group_scores(rows, groups).items():
            print(group_line(name, entry))
    if args.csv:
        rows, fields = with_group_column(rows, OBJECT_FIELDS, groups)
        if not write_table(args.csv, rows, fields):
            return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
