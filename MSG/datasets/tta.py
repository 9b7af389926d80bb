"""Test-time augmentation pipelines: change the ratios of a config's ``tta_pipeline``, or strip its
file/annotation loading so that an image already in memory (``tools/predict.py``) goes through the
very same augmentations.

A ``tta_pipeline`` here is mmseg 1.x's form: ``LoadImageFromFile`` then one ``TestTimeAug`` whose
``transforms`` is a list of alternatives per stage (every combination is one pass), e.g.
``[[Resize(r) for r in ratios], [no flip, flip], [LoadBinaryAnnotations], [PackSegInputs]]``.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

from common.cli import positive_float

# OEEM's MultiScaleFlipAug ratios (relative to the training scale), the MSSG test protocol.
OEEM_RATIOS = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
_LOADERS = ("LoadImageFromFile", "LoadAnnotations", "LoadBinaryAnnotations", "LoadImageFromNDArray")


def _tta_stages(pipeline: Sequence[dict]) -> list[list[dict]]:
    for step in pipeline:
        if step.get("type") == "TestTimeAug":
            return step["transforms"]
    raise ValueError("tta_pipeline has no TestTimeAug step")


def tta_ratios(pipeline: Sequence[dict]) -> list[float]:
    """The ``scale_factor`` of each ``Resize`` alternative (``[1.0]`` when the pipeline does not resize)."""
    for stage in _tta_stages(pipeline):
        if stage and all(t.get("type") == "Resize" and "scale_factor" in t for t in stage):
            return [float(t["scale_factor"]) for t in stage]
    return [1.0]


def with_tta_ratios(pipeline: Sequence[dict], ratios: Sequence[float]) -> list[dict]:
    """A copy of ``pipeline`` whose TestTimeAug resizes to exactly ``ratios`` (scale factors of the image)."""
    if not ratios or any(r <= 0 for r in ratios):
        raise ValueError(f"TTA ratios must be positive, got {list(ratios)}")
    pipeline = copy.deepcopy(list(pipeline))
    stages = _tta_stages(pipeline)
    resize = [dict(type="Resize", scale_factor=float(r), keep_ratio=True) for r in ratios]
    for i, stage in enumerate(stages):
        if stage and all(t.get("type") == "Resize" for t in stage):
            stages[i] = resize
            return pipeline
    stages.insert(0, resize)
    return pipeline


def config_tta_pipeline(cfg, ratios: Sequence[float] | None = None) -> list[dict]:
    """The config's ``tta_pipeline`` with ``ratios`` if given, else with the config's own ``tta_ratios``
    override (a config that changes only the ratios sets ``tta_ratios`` instead of copying the pipeline)."""
    ratios = ratios or cfg.get("tta_ratios")
    return with_tta_ratios(cfg.tta_pipeline, ratios) if ratios else copy.deepcopy(list(cfg.tta_pipeline))


def without_loading(pipeline: Sequence[dict]) -> list[dict]:
    """A copy of ``pipeline`` without image/annotation loading, for images given as arrays
    (``dict(img=BGR uint8, img_shape=..., ori_shape=...)``) and no ground truth."""
    out = []
    for step in copy.deepcopy(list(pipeline)):
        if step.get("type") in _LOADERS:
            continue
        if step.get("type") == "TestTimeAug":
            step["transforms"] = [
                stage for stage in step["transforms"] if not all(t.get("type") in _LOADERS for t in stage)]
        out.append(step)
    return out


def tta_cost(ratios: Sequence[float], flips: int = 2) -> float:
    """Compute relative to one 1x pass: pixels scale with the square of the ratio, times the flips."""
    return flips * sum(r * r for r in ratios)


# argparse type of ``--tta-ratios``
positive_ratio = positive_float
