"""How a trained model treats each kind of proposal pixel, pooled over a set (and each group).

    python tools/follow_proposals.py PRED_DIR PROPOSALS GT_DIR [--groups Grade.csv] [--csv OUT.csv]

PRED_DIR holds the model's gland masks (``tools/predict.py``'s ``masks/``), PROPOSALS the 0/1/2 maps
it was trained on (SPM's ``gland_proposal/``, or a self-training round's), GT_DIR the masks. For each
proposal class (border, interior, background) crossed with the truth: the share of the pixels and the
share the model calls gland (``evaluation/follow.py``). The masks only score; nothing is trained.
"""
from __future__ import annotations

import argparse
import sys

from evaluation.follow import FollowCounts, group_follow, score_follow
from evaluation.groups import add_group_arguments, run_group_tables

CSV_FIELDS = ("group", "images", "proposal", "truth", "pixel_share", "called_gland")


def table_lines(title: str, counts: FollowCounts) -> list[str]:
    lines = [title, f"  {'proposal':<11} {'truth':<11} {'pixels':>8} {'called gland':>13}"]
    lines += [f"  {r['proposal']:<11} {r['truth']:<11} {r['pixel_share']:>8} {r['called_gland'] or '-':>13}"
              for r in counts.rows()]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="How a model treats each kind of proposal pixel (against masks)")
    p.add_argument("pred_dir", help="the model's gland masks")
    p.add_argument("proposals", help="the 0/1/2 proposal maps it was trained on")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the tables here (one row per group and kind of pixel)")
    add_group_arguments(p)
    p.add_argument("--allow-missing", action="store_true", help="score although some GT images have no mask")
    args = p.parse_args(argv)
    return run_group_tables(args, score_follow, (args.pred_dir, args.proposals, args.gt_dir), group_follow,
                            table_lines, CSV_FIELDS)


if __name__ == "__main__":
    sys.exit(main())
