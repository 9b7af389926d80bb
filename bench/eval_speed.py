"""Evaluation speed: ``tools/evaluate.py``'s metrics on a folder of (possibly fragmented) masks, with
and without the object Hausdorff, and how fragmented the masks are.

    python bench/eval_speed.py PRED_DIR GT_DIR
    # e.g. the SPM border proposals (dark-nuclei clusters, many small objects) of the 85 train images:
    python bench/eval_speed.py work_dirs/spm_glas_train/cluster_5_nConv_3/border_proposal \
        ../shared/data/glas/train/masks

Target: a full testA evaluation (60 images) of a fragmented prediction in under a minute with the
Hausdorff on; the line below scales the measured time to 60 images.
"""
from __future__ import annotations

import sys
import time

from evaluation.folders import score_objects, summary_line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pred, gt = argv
    start = time.perf_counter()
    summary, rows, pairing = score_objects(pred, gt, hausdorff=False)
    without = time.perf_counter() - start
    start = time.perf_counter()
    summary, rows, pairing = score_objects(pred, gt, hausdorff=True)
    with_h = time.perf_counter() - start
    objects = [int(r["obj_TP"]) + int(r["obj_FP"]) for r in rows]
    n = len(rows)
    print(summary_line(summary))
    print(f"{n} images, {sum(objects) / max(n, 1):.0f} predicted objects per image (max {max(objects, default=0)})")
    print(f"without Hausdorff {without:.1f} s, with Hausdorff {with_h:.1f} s; "
          f"per 60 images (testA): {60 * with_h / max(n, 1):.1f} s (target < 60 s)")
    return 1 if pairing.errors else 0


if __name__ == "__main__":
    sys.exit(main())
