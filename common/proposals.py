"""The proposal map encoding shared by SPM (which writes it), crop, MSG (which trains on it) and evaluation.

``gland_proposal/NAME.png``, uint8, same H x W as the image:

* ``0`` background (including border-cluster pieces removed as noise),
* ``1`` gland border (border-proposal pixels inside the filled gland region),
* ``2`` gland interior (filled gland region that is not border),
* ``255`` ignore (padding of training patches only).

The original MSSG code published its maps as ``0 / 127 / 254``; :func:`as_proposal` converts them.
"""
from __future__ import annotations

import os

import numpy as np

from common.io import InputError
from common.morphology import remove_small_holes

BACKGROUND, BORDER, INTERIOR = 0, 1, 2
IGNORE = 255
ENCODING = frozenset({BACKGROUND, BORDER, INTERIOR})
ORIGINAL_ENCODING = {0: BACKGROUND, 127: BORDER, 254: INTERIOR}
PROPOSAL_ENCODINGS = (ENCODING, frozenset(ORIGINAL_ENCODING))


def as_proposal(path: str | os.PathLike, raw: np.ndarray) -> np.ndarray:
    """A proposal map read from ``path`` as uint8 0/1/2; the original 0/127/254 maps are converted.

    Raises:
        InputError: any other values, e.g. a 0/255 mask (a ground-truth mask or SPM's
            ``border_proposal/``), which would otherwise be read as "ignore" and train nothing.
    """
    values = set(np.unique(raw).tolist())
    if values <= ENCODING:
        return raw.astype(np.uint8)
    if values <= set(ORIGINAL_ENCODING):
        return (raw // 127).astype(np.uint8)
    shown = ", ".join(map(str, sorted(values)[:6])) + (", ..." if len(values) > 6 else "")
    hint = " (a binary mask: pass SPM's gland_proposal/ folder, not border_proposal/ or ground truth)" \
        if values <= {0, 255} else ""
    raise InputError(path, f"values {shown} are not a proposal map (0 background / 1 border / 2 interior, "
                           f"or the original 0/127/254){hint}")


def proposal_from_prediction(gland: np.ndarray, spm_proposal: np.ndarray, hole_area: int) -> np.ndarray:
    """The proposal map of a self-training round: a trained model's gland mask becomes the gland.

    The mask's holes smaller than ``hole_area`` px are filled first (SPM's interior rule: the lumen the
    network leaves out); SPM's border pixels inside that gland stay border, the rest of the gland is
    interior, and what the model rejected is background even where SPM had proposed gland.

    Args:
        gland: ``(H, W)`` bool, the model's gland prediction.
        spm_proposal: ``(H, W)`` uint8 0/1/2 map of SPM (the border it found).
        hole_area: holes smaller than this many pixels are filled (0: none).

    Returns:
        ``(H, W)`` uint8 0/1/2 proposal map.
    """
    if gland.shape != spm_proposal.shape:
        raise ValueError(f"prediction {gland.shape} and proposal {spm_proposal.shape} differ in size")
    return _filled_proposal(gland.astype(bool), spm_proposal == BORDER, hole_area)


def cap_gland_area(gland: np.ndarray, probability: np.ndarray, spm_proposal: np.ndarray,
                   max_ratio: float) -> np.ndarray:
    """A model's gland mask limited to ``max_ratio`` times the gland area SPM proposed in the same image.

    A network trained on SPM's proposals can widen the glands well beyond them (in benign colonic mucosa
    it paints the lamina propria between the crypts); a self-training round would then teach that
    widening. Where the mask is larger than the limit, only its most probable pixels are kept: the
    lowest probability level whose pixels still fit. Whole levels are kept or dropped, so ties never
    split by raster order.

    Args:
        gland: ``(H, W)`` bool, the model's gland prediction.
        probability: ``(H, W)`` gland probability, float in [0, 1] or the 8-bit maps of ``tools/predict.py
            --probabilities`` (ranked as they are).
        spm_proposal: ``(H, W)`` uint8 0/1/2 map of SPM; its border + interior is the reference area.
        max_ratio: the mask may cover at most this many times SPM's gland area (> 0).

    Returns:
        ``(H, W)`` bool, ``gland`` itself when it fits, else the subset ``gland & (probability >= t)``
        with the smallest ``t`` that fits (possibly empty).
    """
    if not max_ratio > 0:
        raise ValueError(f"max_ratio must be > 0, got {max_ratio}")
    if not gland.shape == probability.shape == spm_proposal.shape:
        raise ValueError(f"prediction {gland.shape}, probability {probability.shape} and proposal "
                         f"{spm_proposal.shape} differ in size")
    gland = gland.astype(bool)
    limit = int(max_ratio * np.count_nonzero(spm_proposal != BACKGROUND))
    if np.count_nonzero(gland) <= limit:
        return gland
    levels, counts = np.unique(probability[gland], return_counts=True)
    # kept[i]: how many gland pixels have probability >= levels[i]
    kept = np.cumsum(counts[::-1])[::-1]
    fits = np.flatnonzero(kept <= limit)
    if fits.size == 0:
        return np.zeros_like(gland)
    return gland & (probability >= levels[fits[0]])


def screen_proposal(spm_proposal: np.ndarray, keep_border: np.ndarray, add_gland: np.ndarray | None,
                    hole_area: int) -> np.ndarray:
    """SPM's proposal map with its border kept only where ``keep_border`` holds, and gland added where
    ``add_gland`` holds.

    SPM's darkest-cluster cue takes the lymphocyte-rich stroma for the glands' border in part of benign
    colonic mucosa, and leaves out epithelium that is not the darkest cluster; its interior (what the
    border encloses) is right more often. A judge that knows nothing of one image's cue (a probe of
    pretrained features fitted to the other images' proposals) then decides which border pixels stay
    and, where it is sure, which background is gland. The gland becomes SPM's interior, the kept border
    and the added pixels, with holes smaller than ``hole_area`` px filled (SPM's interior rule); kept
    border pixels inside it stay border, the rest of it is interior, dropped border outside it is
    background.

    Args:
        spm_proposal: ``(H, W)`` uint8 0/1/2 map of SPM.
        keep_border: ``(H, W)`` bool, where the border may stay.
        add_gland: ``(H, W)`` bool, where background becomes gland (None: nowhere).
        hole_area: holes smaller than this many pixels are filled (0: none).

    Returns:
        ``(H, W)`` uint8 0/1/2 proposal map.
    """
    for name, mask in (("keep_border", keep_border), ("add_gland", add_gland)):
        if mask is not None and mask.shape != spm_proposal.shape:
            raise ValueError(f"{name} {mask.shape} and proposal {spm_proposal.shape} differ in size")
    border = (spm_proposal == BORDER) & keep_border.astype(bool)
    gland = border | (spm_proposal == INTERIOR)
    if add_gland is not None:
        gland |= add_gland.astype(bool)
    return _filled_proposal(gland, border, hole_area)


def _filled_proposal(gland: np.ndarray, border: np.ndarray, hole_area: int) -> np.ndarray:
    """``gland`` with holes under ``hole_area`` px filled (0: none) as a 0/1/2 map: ``border`` pixels
    inside it border, the rest interior."""
    filled = remove_small_holes(gland, hole_area) if hole_area else gland
    out = np.zeros(gland.shape, np.uint8)
    out[filled] = INTERIOR
    out[filled & border] = BORDER
    return out
