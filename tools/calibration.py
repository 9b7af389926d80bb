"""Reliability of gland probability maps against ground-truth masks, pooled over a set (and each group).

    python tools/calibration.py PROB_DIR GT_DIR [--edges 0 0.1 0.3 0.5 0.7 0.9 1] [--groups Grade.csv]
                                [--csv OUT.csv]

PROB_DIR holds 8-bit probability maps (``p = value / 255``), as ``tools/predict.py --probabilities``
writes them. Per probability bin: the share of the pixels, their mean probability and how many of them
are gland in the masks, plus the expected calibration error (ECE). Where a model is wrong with high
confidence, no threshold or confidence-weighted training repairs it; this table tells whether it is.
"""
from __future__ import annotations

import argparse
import sys

from evaluation.calibration import (
    DEFAULT_EDGES,
    ReliabilityCounts,
    check_edges,
    group_reliability,
    score_reliability,
)
from evaluation.groups import add_group_arguments, run_group_tables

CSV_FIELDS = ("group", "images", "ECE", "bin", "pixel_share", "mean_probability", "gland_frequency")


def table_lines(title: str, counts: ReliabilityCounts) -> list[str]:
    lines = [f"{title}  ECE: {counts.ece():.4f}", f"  {'bin':<12} {'pixels':>8} {'mean p':>8} {'gland':>8}"]
    lines += [f"  {r['bin']:<12} {r['pixel_share']:>8} {r['mean_probability'] or '-':>8} "
              f"{r['gland_frequency'] or '-':>8}" for r in counts.rows()]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Reliability (calibration) of gland probability maps against masks")
    p.add_argument("prob_dir", help="8-bit probability maps (tools/predict.py --probabilities)")
    p.add_argument("gt_dir")
    p.add_argument("--edges", type=float, nargs="+", default=list(DEFAULT_EDGES),
                   help="probability bin edges, from 0 to 1 (default: %(default)s)")
    p.add_argument("--csv", help="write the tables here (one row per group and bin)")
    p.add_argument("--pred_suffix", default="", help="strip this from map names before matching")
    add_group_arguments(p)
    p.add_argument("--allow-missing", action="store_true", help="score although some GT images have no map")
    args = p.parse_args(argv)
    try:
        edges = check_edges(args.edges)
    except ValueError as err:
        p.error(str(err))
    return run_group_tables(args, score_reliability, (args.prob_dir, args.gt_dir, edges, args.pred_suffix),
                            group_reliability, table_lines, CSV_FIELDS, lambda counts: {"ECE": f"{counts.ece():.4f}"})


if __name__ == "__main__":
    sys.exit(main())
