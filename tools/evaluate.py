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

from common.io import InputError, write_csv
from evaluation.folders import OBJECT_FIELDS, details_line, run_reporting_errors, score_objects, summary_line
from evaluation.groups import UNLISTED, group_line, group_scores, read_groups


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU/Dice and GlaS object F1/Dice/Hausdorff")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--no-hausdorff", dest="hausdorff", action="store_false", help="skip the (slower) Hausdorff")
    p.add_argument("--threshold", type=float, help="score value > THRESHOLD as gland (soft or multi-valued maps)")
    p.add_argument("--details", action="store_true", help="also pooled precision, recall and gland fractions")
    p.add_argument("--groups", metavar="CSV", help="also score each group of images of this table (first column "
                   "the image names), e.g. GlaS's Grade.csv: one line per grade")
    p.add_argument("--group-column", metavar="NAME",
                   help="the table's group column (default: ' grade (GlaS)' where present, else the second)")
    p.add_argument("--allow-missing", action="store_true", help="score although some GT images have no prediction")
    args = p.parse_args(argv)
    groups = None
    if args.groups:
        try:
            groups = read_groups(args.groups, args.group_column)
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
        fields = OBJECT_FIELDS
        if groups is not None:
            rows = [{**row, "group": groups.get(row["image"], UNLISTED)} for row in rows]
            fields = (*fields, "group")
        try:
            write_csv(args.csv, rows, fields)
        except OSError as err:
            print(f"error: {InputError(args.csv, f'cannot write ({err.strerror or err})')}", file=sys.stderr)
            return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
