"""The empirical cue and post-processing of SPM, as pure NumPy/SciPy functions.

Given the K-means cluster map of one image and its grayscale version:

1. **Border proposal** (:func:`select_border_cluster`): clusters sorted by mean gray
   intensity, ascending; the first (darkest) with more than ``min_pixels`` pixels is the
   gland border (epithelial nuclei are the darkest large structure in H&E).
2. **Noise removal** (:func:`remove_noise`), scaled by the border's foreground fraction ``f``:
   ``f > 0.7``: erode 3x3 once, drop objects < 1000 px; ``f > 0.45``: erode, < 600 px;
   ``f > 0.25``: < 400 px; ``f > 0.2``: < 100 px; ``f > 0.1``: < 50 px; else unchanged.
3. **Hole filling** (:func:`fill_glands`): if the cleaned fraction is < 0.25, dilate 5x5 once,
   then fill holes smaller than ``hole_area`` px. The filled mask is the gland region.
4. **Encoding** (:func:`encode_proposal`): 0 background, 1 border inside the gland region,
   2 rest of the gland region (interior).

Connectivity follows scikit-image's defaults used by the original code (``connectivity=1``:
4-neighbourhood for both objects and holes); "smaller than" is strict, as in skimage.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from common.morphology import remove_small_holes, remove_small_objects
from common.proposals import BACKGROUND, BORDER, INTERIOR

# (fraction strictly above, erode first, min object size), checked top to bottom.
NOISE_RULES: tuple[tuple[float, bool, int], ...] = (
    (0.7, True, 1000),
    (0.45, True, 600),
    (0.25, False, 400),
    (0.2, False, 100),
    (0.1, False, 50),
)
DILATE_BELOW_FRACTION = 0.25


@dataclass
class Proposal:
    """Everything SPM derives from one cluster map (all arrays H x W)."""

    proposal_map: np.ndarray  # uint8 0/1/2
    border: np.ndarray  # bool, the selected cluster
    gland: np.ndarray  # bool, filled gland region
    cluster: int
    cluster_gray: float
    warnings: list[str] = field(default_factory=list)


def cluster_stats(gray: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel count and mean gray of clusters ``0..k-1`` (mean is NaN for an empty cluster).

    Args:
        gray: ``(H, W)`` grayscale image.
        labels: ``(H, W)`` integer cluster ids in ``[0, k)``.
    """
    flat = labels.ravel().astype(np.intp)
    sizes = np.bincount(flat, minlength=k)[:k]
    sums = np.bincount(flat, weights=gray.ravel().astype(np.float64), minlength=k)[:k]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes
    return sizes, means


def select_border_cluster(
    sizes: np.ndarray, mean_gray: np.ndarray, min_pixels: int = 10000
) -> tuple[int, str | None]:
    """Index of the darkest cluster with more than ``min_pixels`` pixels.

    When no cluster qualifies the original code silently took the brightest one; here the
    largest cluster is taken and a warning is returned instead.

    Returns:
        ``(cluster index, warning or None)``.
    """
    present = np.flatnonzero(sizes > 0)
    order = present[np.argsort(mean_gray[present], kind="stable")]
    for idx in order:
        if sizes[idx] > min_pixels:
            return int(idx), None
    largest = int(np.argmax(sizes))
    return largest, (
        f"no cluster has more than {min_pixels} pixels; took the largest "
        f"(cluster {largest}, {int(sizes[largest])} px)"
    )


def _erode3(mask: np.ndarray) -> np.ndarray:
    # cv2.erode's default border value leaves the image edge untouched: treat outside as 1.
    return ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=1)


def _dilate5(mask: np.ndarray) -> np.ndarray:
    return ndimage.binary_dilation(mask, structure=np.ones((5, 5), bool), border_value=0)


def remove_noise(border: np.ndarray) -> np.ndarray:
    """Noise removal scaled by the border's foreground fraction (see module docstring)."""
    border = border.astype(bool)
    fraction = border.mean()
    for above, erode, min_size in NOISE_RULES:
        if fraction > above:
            mask = _erode3(border) if erode else border
            return remove_small_objects(mask, min_size)
    return border.copy()


def fill_glands(cleaned: np.ndarray, hole_area: int = 15000) -> np.ndarray:
    """Dilate sparse masks once, then fill holes smaller than ``hole_area`` pixels.

    The original called ``cv2.dilate(img, kernel, iterations)`` with ``iterations=2`` in the
    position of OpenCV's ``dst`` argument, so the dilation ran once; that is reproduced here.
    """
    cleaned = cleaned.astype(bool)
    if cleaned.mean() < DILATE_BELOW_FRACTION:
        cleaned = _dilate5(cleaned)
    return remove_small_holes(cleaned, hole_area)


def encode_proposal(border: np.ndarray, gland: np.ndarray) -> np.ndarray:
    """0 background, 1 border pixels inside the gland region, 2 the rest of the gland region."""
    border = border.astype(bool)
    gland = gland.astype(bool)
    out = np.full(gland.shape, BACKGROUND, np.uint8)
    out[gland] = INTERIOR
    out[gland & border] = BORDER
    return out


def mine_proposal(
    gray: np.ndarray,
    labels: np.ndarray,
    k: int,
    min_border_pixels: int = 10000,
    hole_area: int = 15000,
) -> Proposal:
    """Apply the empirical cue and the post-processing to one cluster map.

    Args:
        gray: ``(H, W)`` grayscale image (OpenCV BGR->gray of the input).
        labels: ``(H, W)`` cluster ids in ``[0, k)``.
        k: number of clusters.
    """
    if gray.shape != labels.shape:
        raise ValueError(f"gray {gray.shape} and labels {labels.shape} differ in shape")
    sizes, means = cluster_stats(gray, labels, k)
    cluster, warning = select_border_cluster(sizes, means, min_border_pixels)
    border = labels == cluster
    gland = fill_glands(remove_noise(border), hole_area)
    warnings = [warning] if warning else []
    frame = frame_coverage(border)
    if frame > FRAME_WARN_FRACTION:
        warnings.append(f"the selected border cluster covers {frame:.0%} of the image's {FRAME_WIDTH}-px frame: "
                        "CSNet's zero padding gave the frame an embedding like the glands' border, so the "
                        "proposal includes the image frame")
    return Proposal(
        proposal_map=encode_proposal(border, gland),
        border=border,
        gland=gland,
        cluster=cluster,
        cluster_gray=float(means[cluster]),
        warnings=warnings,
    )


# The frame a 3-conv CSNet's zero padding reaches (3 px), and the share of it covered by the border
# cluster above which the frame itself was clustered with the glands' border (glands cut by the image
# edge cover a small part of it; on the synthetic sample the artefact covers ~40%).
FRAME_WIDTH = 3
FRAME_WARN_FRACTION = 0.3


def frame_coverage(mask: np.ndarray, width: int = FRAME_WIDTH) -> float:
    """Share of the pixels within ``width`` px of the array's edge that are ``True`` in ``mask``."""
    frame = np.ones(mask.shape, bool)
    frame[width:-width, width:-width] = False
    return float(mask[frame].mean()) if frame.any() else 0.0
