"""ORACLE score of cluster maps: pooled mIoU / Dice after mapping clusters to gland with the ground truth.

    python tools/oracle_eval.py CLUSTER_ID_DIR GT_DIR [--csv per_image.csv]
    python tools/oracle_eval.py CLUSTER_ID_DIR GT_DIR --set-level [--oracle majority|hungarian]

Per image (default), every cluster becomes gland when more than half of its pixels are gland in the
ground truth; ``--set-level`` (for cluster ids that are global over the set, as PiCIE's) maps each
cluster once for the whole set: ``majority`` (many-to-one) or ``hungarian`` (one-to-one, PiCIE's
protocol). Both use the labels (``evaluation/oracles.py``): upper bounds for any label-free rule, not
unsupervised results. ``CLUSTER_ID_DIR`` holds raw cluster ids (one gray PNG per image); ground truth
> 0 is gland, as ``NAME.png`` or ``NAME_anno.bmp``. Output and exit codes as ``tools/eval_proposals.py``.
"""
from __future__ import annotations

import argparse
import sys

from common.io import write_csv
from evaluation.folders import PIXEL_FIELDS, pixel_fields, run_reporting_errors
from evaluation.oracles import score_oracle


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
    outcome = run_reporting_errors(score_oracle, args.cluster_dir, args.gt_dir, args.set_level, args.oracle,
                                   allow_missing=True)
    if outcome is None:
        return 2
    pooled, rows, rc = outcome
    if args.csv:
        write_csv(args.csv, [*rows, {"image": "POOLED", **pixel_fields(pooled)}], PIXEL_FIELDS)
    m = pixel_fields(pooled)
    kind = f"{args.oracle}, set-level" if args.set_level else "majority vote per cluster per image"
    print(f"ORACLE ({kind}, uses the GT) images: {len(rows)}  mIoU: {m['mIoU']}  "
          f"IoU_bg: {m['IoU_background']}  IoU_gland: {m['IoU_gland']}  Dice: {m['Dice']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
