"""Pooled mIoU / Dice of SPM proposal maps (or any gland masks) against ground truth.

    python tools/eval_proposals.py PROPOSAL_DIR GT_DIR [--csv per_image.csv] [--pred_suffix _gland_proposal]
                                   [--threshold T] [--details] [--allow-missing]

Gland = proposal value > 0 (border or interior); maps must be 0/1/2 proposals (or the original
0/127/254) or binary masks, anything else is an error unless ``--threshold T`` (gland = value > T) is
given. Ground truth > 0 is gland (instance ids collapse); a colour image as a mask is an error. Prints
the pooled metrics (``evaluation/pixel.py``); ``--details`` adds pooled precision, recall and gland
fractions; ``--csv`` writes a per-image table plus a final ``POOLED`` row. Two maps of one stem are
refused; a missing or mismatched mask is reported on one line and the rest are still evaluated (exit
1); ground-truth images without a map fail the run unless ``--allow-missing``.
"""
from __future__ import annotations

import argparse
import sys

from common.io import InputError, write_csv
from evaluation.folders import PIXEL_FIELDS, details_line, pixel_fields, run_reporting_errors, score_pixels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU and Dice of proposal maps against GT masks")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--pred_suffix", default="", help="strip this from prediction names before matching")
    p.add_argument("--threshold", type=float, help="score value > THRESHOLD as gland (soft or multi-valued maps)")
    p.add_argument("--details", action="store_true", help="also pooled precision, recall and gland fractions")
    p.add_argument("--allow-missing", action="store_true", help="score although some GT images have no map")
    args = p.parse_args(argv)
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
    if args.csv:
        try:
            write_csv(args.csv, [*rows, {"image": "POOLED", **m}], PIXEL_FIELDS)
        except OSError as err:
            print(f"error: {InputError(args.csv, f'cannot write ({err.strerror or err})')}", file=sys.stderr)
            return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
