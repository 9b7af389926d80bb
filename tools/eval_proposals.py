"""Pooled mIoU / Dice of SPM proposal maps (or any gland masks) against ground truth.

    python tools/eval_proposals.py PROPOSAL_DIR GT_DIR [--csv per_image.csv] [--pred_suffix _gland_proposal]

Gland = proposal value > 0 (border or interior); maps must be 0/1/2 proposals or binary masks,
anything else is an error unless ``--threshold T`` (gland = value > T) is given. Ground truth > 0
is gland (instance ids collapse); a colour image as a mask is an error. Prints the pooled metrics
(see ``evaluation/pixel.py``); ``--csv`` writes a per-image
table plus a final ``POOLED`` row. A missing or mismatched mask is reported on one line and
the rest are still evaluated (exit code 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.pixel import PooledCounts
from SPM.io import InputError, find_ground_truth, is_image_file, list_files, read_mask, read_mask_for, write_csv

FIELDS = ("image", "mIoU", "IoU_background", "IoU_gland", "Dice", "pred_fraction", "gt_fraction")


def _fmt(counts: PooledCounts) -> dict[str, str]:
    iou = counts.iou()
    return {"mIoU": f"{counts.miou():.4f}", "IoU_background": f"{iou[0]:.4f}",
            "IoU_gland": f"{iou[1]:.4f}", "Dice": f"{counts.dice():.4f}"}


# This project's proposal maps (0 background, 1 border, 2 interior) and the original MSSG SPM's
# published ones (0, 127 border, 254 interior).
PROPOSAL_ENCODINGS = (frozenset({0, 1, 2}), frozenset({0, 127, 254}))


def gland_mask(path: Path, raw: np.ndarray, threshold: float | None, proposals: bool) -> np.ndarray:
    """Boolean gland mask of a prediction (or proposal map) read from ``path``.

    Without ``threshold`` the map must be binary (0 and one gland value, e.g. 0/255 or 0/1), or, when
    ``proposals``, a proposal map (0/1/2, or the original SPM's 0/127/254); a probability map or an
    overlay passed by mistake is refused instead of being scored. With ``threshold``: gland = value > threshold.
    """
    if threshold is not None:
        return raw > threshold
    values = np.unique(raw)
    if (values > 0).sum() <= 1 or (proposals and any(set(values.tolist()) <= e for e in PROPOSAL_ENCODINGS)):
        return raw > 0
    shown = ", ".join(map(str, values[:6].tolist())) + (", ..." if len(values) > 6 else "")
    expected = "a binary mask (0 and one gland value)"
    if proposals:
        expected = "a binary mask or a 0/1/2 (or 0/127/254) proposal map"
    raise InputError(path, f"{len(values)} distinct values ({shown}), expected {expected}; "
                           "pass --threshold T to score value > T as gland")


def iter_pairs(pred_dir: str | Path, gt_dir: str | Path, errors: list[str], pred_suffix: str = "",
               threshold: float | None = None, proposals: bool = False):
    """Yield ``(name, prediction mask bool, raw GT array)`` for every prediction image with a
    matching mask; problems are appended to ``errors`` as one-line messages."""
    for path in list_files(pred_dir):
        if not is_image_file(path):
            continue
        stem = path.stem
        if pred_suffix and stem.endswith(pred_suffix):
            stem = stem[: -len(pred_suffix)]
        try:
            pred = gland_mask(path, read_mask(path), threshold, proposals)
            gt = read_mask_for(find_ground_truth(gt_dir, stem), pred.shape, "no such file")
        except InputError as err:
            errors.append(str(err))
            continue
        yield stem, pred, gt


def evaluate_folder(
    pred_dir: str | Path, gt_dir: str | Path, pred_suffix: str = "", threshold: float | None = None
) -> tuple[PooledCounts, list[dict], list[str]]:
    """Returns ``(pooled counts, per-image rows, error lines)``."""
    pooled = PooledCounts()
    rows: list[dict] = []
    errors: list[str] = []
    for stem, pred, gt_raw in iter_pairs(pred_dir, gt_dir, errors, pred_suffix, threshold, proposals=True):
        gt = gt_raw > 0
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        rows.append({"image": stem, **_fmt(one), "pred_fraction": f"{pred.mean():.4f}",
                     "gt_fraction": f"{gt.mean():.4f}"})
    return pooled, rows, errors


def run_reporting_errors(evaluate_fn, pred_dir: str, *args) -> tuple[object, list[dict], int] | None:
    """Call ``evaluate_fn(pred_dir, *args) -> (result, rows, errors)`` and print each problem on one
    line. Returns ``(result, rows, exit code)``, or None when nothing could be evaluated (exit 2)."""
    try:
        result, rows, errors = evaluate_fn(pred_dir, *args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if not rows:
        print(f"error: {pred_dir}: no prediction could be evaluated", file=sys.stderr)
        return None
    return result, rows, 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pooled mIoU and Dice of proposal maps against GT masks")
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--csv", help="write the per-image table here")
    p.add_argument("--pred_suffix", default="", help="strip this from prediction names before matching")
    p.add_argument("--threshold", type=float, help="score value > THRESHOLD as gland (soft or multi-valued maps)")
    args = p.parse_args(argv)
    outcome = run_reporting_errors(evaluate_folder, args.pred_dir, args.gt_dir, args.pred_suffix, args.threshold)
    if outcome is None:
        return 2
    pooled, rows, rc = outcome
    if args.csv:
        write_csv(args.csv, [*rows, {"image": "POOLED", **_fmt(pooled)}], FIELDS)
    m = _fmt(pooled)
    print(f"images: {len(rows)}  mIoU: {m['mIoU']}  IoU_bg: {m['IoU_background']}  "
          f"IoU_gland: {m['IoU_gland']}  Dice: {m['Dice']}" + (f"  (per-image: {args.csv})" if args.csv else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())
