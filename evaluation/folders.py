"""Scoring folders of predictions against folders of ground truth: pairing by stem and the one
scoring loop that ``tools/evaluate.py``, ``tools/eval_proposals.py``, the oracles and the benches use.

Pairing refuses what would score silently wrong: two predictions of one stem (``a.png`` and
``a.bmp``, or a ``--pred_suffix`` collision) are an error before anything is scored; a prediction
that is not a binary mask (nor a 0/1/2 or 0/127/254 proposal map) is an error naming the file
unless a threshold is given; ground-truth images without a prediction are counted and reported
(``missing``), and fail the run unless the caller allows them.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.io import (
    InputError,
    find_ground_truth,
    is_image_file,
    list_files,
    read_mask,
    read_mask_for,
    write_csv,
)
from common.proposals import PROPOSAL_ENCODINGS
from evaluation.glas_objects import ObjectSums, is_instance_map, label_objects, object_sums
from evaluation.pixel import PooledCounts

OBJECT_FIELDS = ("image", "mIoU", "Dice", "obj_TP", "obj_FP", "obj_FN", "obj_F1", "obj_Dice", "obj_Hausdorff")
PIXEL_FIELDS = ("image", "mIoU", "IoU_background", "IoU_gland", "Dice", "pred_fraction", "gt_fraction")
BINARY_GT_NOTICE = "binary ground truth: objects are its connected components, so touching glands merge"


def pixel_fields(counts: PooledCounts) -> dict[str, str]:
    """mIoU, per-class IoU and Dice of ``counts`` as 4-decimal strings (CSV and printed tables)."""
    iou = counts.iou()
    return {"mIoU": f"{counts.miou():.4f}", "IoU_background": f"{iou[0]:.4f}",
            "IoU_gland": f"{iou[1]:.4f}", "Dice": f"{counts.dice():.4f}"}


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


def read_gland(folder: str | Path, stem: str, shape: tuple[int, int] | None, proposals: bool) -> np.ndarray:
    """The boolean gland mask of image ``stem`` in ``folder`` (a mask, or with ``proposals`` a proposal
    map), refused when its size is not ``shape`` (H, W)."""
    path = find_ground_truth(folder, stem)
    mask = gland_mask(path, read_mask(path), None, proposals)
    if shape is not None and mask.shape != shape:
        raise InputError(path, f"size {mask.shape[1]}x{mask.shape[0]} differs from its mask {shape[1]}x{shape[0]}")
    return mask


@dataclass
class Pairing:
    """What :func:`iter_pairs` found besides the pairs: error lines and GT images without a prediction."""

    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def prediction_files(pred_dir: str | Path, pred_suffix: str = "") -> dict[str, Path]:
    """``{stem: file}`` of the prediction images (``pred_suffix`` stripped); two files of one stem are refused."""
    files = [f for f in list_files(pred_dir) if is_image_file(f)]
    by_stem: dict[str, Path] = {}
    for f in files:
        stem = f.stem[: -len(pred_suffix)] if pred_suffix and f.stem.endswith(pred_suffix) else f.stem
        if stem in by_stem:
            raise InputError(f, f"scores against the same ground truth {stem!r} as {by_stem[stem]}; "
                                "keep one prediction per image")
        by_stem[stem] = f
    return by_stem


def gt_stems(gt_dir: str | Path) -> list[str]:
    """Stems of the ground-truth masks of ``gt_dir``: the official ``NAME_anno.<ext>`` where the folder
    has them (images lie beside them), else every image (``masks/NAME.png``)."""
    files = [f for f in list_files(gt_dir) if is_image_file(f)]
    anno = [f.stem.removesuffix("_anno") for f in files if f.stem.endswith("_anno")]
    return sorted(set(anno or [f.stem for f in files]))


def iter_pairs(pred_dir: str | Path, gt_dir: str | Path, pairing: Pairing, pred_suffix: str = "",
               threshold: float | None = None, proposals: bool = False
               ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(stem, prediction mask bool, raw GT array)`` for every prediction with a matching mask;
    problems go to ``pairing.errors`` as one-line messages, GT stems without a prediction to
    ``pairing.missing``."""
    yield from iter_read_pairs(pred_dir, gt_dir, pairing,
                               lambda path: gland_mask(path, read_mask(path), threshold, proposals), pred_suffix)


def iter_read_pairs(pred_dir: str | Path, gt_dir: str | Path, pairing: Pairing,
                    read_prediction: Callable[[Path], np.ndarray], pred_suffix: str = ""
                    ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """:func:`iter_pairs` with the prediction read by ``read_prediction(path)`` (which raises
    :class:`InputError` for a file it refuses), e.g. a probability map instead of a mask."""
    preds = prediction_files(pred_dir, pred_suffix)
    pairing.missing = [s for s in gt_stems(gt_dir) if s not in preds]
    for stem, path in tqdm(preds.items(), disable=None, dynamic_ncols=True, unit="img", leave=False):
        try:
            pred = read_prediction(path)
            gt = read_mask_for(find_ground_truth(gt_dir, stem), pred.shape, "no such file")
        except InputError as err:
            pairing.errors.append(str(err))
            continue
        yield stem, pred, gt


def score_mask_pairs(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> tuple[PooledCounts, list[dict]]:
    """The pixel scoring loop: pooled counts and per-image rows (``PIXEL_FIELDS``, plus the image's
    :class:`PooledCounts` under ``pixels`` for :mod:`evaluation.groups`) of ``(name, prediction,
    ground truth)`` mask pairs (ground truth > 0 is gland)."""
    pooled = PooledCounts()
    rows: list[dict] = []
    for name, pred, gt_raw in pairs:
        gt = gt_raw > 0
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        rows.append({"image": name, **pixel_fields(one), "pred_fraction": f"{pred.mean():.4f}",
                     "gt_fraction": f"{gt.mean():.4f}", "pixels": one})
    return pooled, rows


def score_pixels(pred_dir: str | Path, gt_dir: str | Path, pred_suffix: str = "", threshold: float | None = None
                 ) -> tuple[PooledCounts, list[dict], Pairing]:
    """Pooled pixel counts and per-image rows (``PIXEL_FIELDS``) of a folder of maps."""
    pairing = Pairing()
    pooled, rows = score_mask_pairs(iter_pairs(pred_dir, gt_dir, pairing, pred_suffix, threshold, proposals=True))
    return pooled, rows, pairing


def score_objects(pred_dir: str | Path, gt_dir: str | Path, hausdorff: bool = True, threshold: float | None = None
                  ) -> tuple[dict, list[dict], Pairing]:
    """Pooled pixel metrics and GlaS object metrics of a folder of masks: ``(summary, rows, pairing)``;
    ``summary["pixels"]`` holds the pooled counts, ``summary["notices"]`` one-line notices; each row
    carries its image's ``pixels`` and ``objects`` sums besides the ``OBJECT_FIELDS``."""
    pooled = PooledCounts()
    objects = ObjectSums()
    rows: list[dict] = []
    pairing = Pairing()
    binary_gt = False
    for stem, pred, gt_raw in iter_pairs(pred_dir, gt_dir, pairing, threshold=threshold, proposals=True):
        gt = gt_raw > 0
        one = PooledCounts()
        one.update(pred, gt)
        pooled.update(pred, gt)
        binary_gt |= gt.any() and not is_instance_map(gt_raw)
        sums = object_sums(label_objects(gt_raw), label_objects(pred), hausdorff)
        objects += sums
        rows.append({"image": stem, "mIoU": f"{one.miou():.4f}", "Dice": f"{one.dice():.4f}",
                     "obj_TP": sums.tp, "obj_FP": sums.fp, "obj_FN": sums.fn, "obj_F1": f"{sums.f1:.4f}",
                     "obj_Dice": f"{sums.dice:.4f}", "obj_Hausdorff": f"{sums.hausdorff:.2f}",
                     "pixels": one, "objects": sums})
    summary = {"images": len(rows), "mIoU": pooled.miou(), "Dice": pooled.dice(), "obj_F1": objects.f1,
               "obj_Dice": objects.dice, "obj_Hausdorff": objects.hausdorff, "pixels": pooled,
               "notices": [f"{gt_dir}: {BINARY_GT_NOTICE}"] if binary_gt else []}
    return summary, rows, pairing


def summary_line(summary: dict) -> str:
    return (f"images: {summary['images']}  mIoU: {summary['mIoU']:.4f}  Dice: {summary['Dice']:.4f}  "
            f"obj_F1: {summary['obj_F1']:.4f}  obj_Dice: {summary['obj_Dice']:.4f}  "
            f"obj_Hausdorff: {summary['obj_Hausdorff']:.2f}")


def details_line(counts: PooledCounts) -> str:
    d = counts.details()
    return (f"precision: {d['precision']:.4f}  recall: {d['recall']:.4f}  "
            f"pred_fraction: {d['pred_fraction']:.4f}  gt_fraction: {d['gt_fraction']:.4f}")


def write_table(path: str | Path, rows: Iterable[dict], fields: Sequence[str]) -> bool:
    """Write a CSV table atomically; a failure is printed as one ``error:`` line naming ``path`` (False)."""
    try:
        write_csv(path, rows, fields)
    except OSError as err:
        print(f"error: {InputError(path, f'cannot write ({err.strerror or err})')}", file=sys.stderr)
        return False
    return True


def run_reporting_errors(score: Callable, pred_dir: str, *args, allow_missing: bool = False
                         ) -> tuple[object, list[dict], int] | None:
    """Call ``score(pred_dir, *args) -> (result, rows, pairing)`` and print each problem on one line.

    Returns ``(result, rows, exit code)`` (1 when some file failed, or when GT images had no
    prediction and ``allow_missing`` is False), or None when nothing could be scored (exit 2).
    """
    try:
        result, rows, pairing = score(pred_dir, *args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    for line in pairing.errors:
        print(f"error: {line}", file=sys.stderr)
    if not rows:
        print(f"error: {pred_dir}: no prediction could be evaluated", file=sys.stderr)
        return None
    rc = 1 if pairing.errors else 0
    if pairing.missing:
        shown = ", ".join(pairing.missing[:3]) + (", ..." if len(pairing.missing) > 3 else "")
        word = "note" if allow_missing else "error"
        print(f"{word}: {pred_dir}: {len(pairing.missing)} ground-truth images have no prediction ({shown})"
              + ("" if allow_missing else "; scored without them only with --allow-missing"), file=sys.stderr)
        rc = rc if allow_missing else 1
    return result, rows, rc
