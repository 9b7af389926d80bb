"""Pooled mIoU / Dice of SPM proposal maps (or any gland masks) against ground truth.

    python tools/eval_proposals.py PROPOSAL_DIR GT_DIR [--csv per_image.csv] [--pred_suffix _gland_proposal]
                                   [--threshold T] [--details] [--allow-missing] [--groups Grade.csv]

Gland = proposal value > 0 (border or interior); maps must be 0/1/2 proposals (or the original
0/127/254) or binary masks, anything else is an error unless ``--threshold T`` (gland = value > T) is
given. Ground truth > 0 is gland (instance ids collapse); a colour image as a mask is an error. Prints
the pooled metrics (``evaluation/pixel.py``); ``--details`` adds pooled precision, recall and gland
fractions; ``--groups TABLE`` adds one line per group of images (GlaS's ``Grade.csv``: benign and
malignant, or with ``--group-column`` the finer grades), pooled over that group's images
(``evaluation/groups.py``); ``--csv`` writes a per-image table plus a final ``POOLED`` row. Two maps
of one stem are refused; a missing or mismatched mask is reported on one line and the rest are still
evaluated (exit 1); ground-truth images without a map fail the run unless ``--allow-missing``.
"""
from __future__ import annotations

import argparse
import sys

from common.io import InputError
from evaluation.folders import (
    PIXEL_FIELDS,
    details_line,
    pixel_fields,
    run_reporting_errors,
    score_pixels,
    write_table,
)
from evaluation.groups import add_group_arguments, group_line, group_scores, read_groups, with_group_column


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU and Dice of proposal maps against GT masks")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--pred_suffix", default="", help="strip this from prediction names before matching")
    p.add_argument("--threshold", type=float, help="score value > THRESHOLD as gland (soft or multi-valued maps)")
    p.add_argument("--details", action="store_true", help="also pooled precision, recall and gland fractions")
    add_group_arguments(p)
    p.add_argument("--allow-missing", action="store_true", help="score although some GT images have no map")
    args = p.parse_args(argv)
    try:
        groups = read_groups(args.groups, args.group_column) if args.groups else None
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    outcome = run_reporting_errors(score_pixels, args.pred_dir, args.gt_dir, args.pred_suffix, args.threshold,
                                   allow_missing=args.allow_missing)
    if outcome is None:
        return 2
    pooled, rows, rc = outcome
    m = pixel_fields(pooled)
    print(f"images: {len(rows)}  mIoU: {m['mIoU']}  IoU_bg: {m['IoU_background']}  "
          f"IoU_gland: {m['IoU_gland']}  Dice: {m['Dice']}" + (f"  (per-image: {args.csv})" if args.csv else ""))
    if args.details:
        print(details_line(pooled))
    if groups is not None:
        for name, entry in group_scores(rows, groups).items():
            print(group_line(name, entry))
    if args.csv:
        rows, fields = with_group_column(rows, PIXEL_FIELDS, groups)
        if not write_table(args.csv, [*rows, {"image": "POOLED", **m}], fields):
            return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
