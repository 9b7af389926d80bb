"""Clusters to a gland mask without labels (this project's addition; the original only writes colour maps)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from SPM.select import cluster_stats, select_border_cluster


@dataclass
class GlandSelection:
    cluster: int  # selected cluster id
    mean_gray: float  # its mean gray intensity
    pixels: int  # its size
    warning: str | None  # set when no cluster had more than min_pixels pixels


def select_gland_cluster(gray: np.ndarray, labels: np.ndarray, min_pixels: int = 10000) -> GlandSelection:
    """The label-free rule: the darkest cluster (lowest mean gray) among those with more than
    ``min_pixels`` pixels (:func:`SPM.select.select_border_cluster`); if none is that large, the largest
    cluster, with a warning.

    Args:
        gray: ``(H, W)`` grayscale image (OpenCV BGR→gray).
        labels: ``(H, W)`` non-negative integer cluster ids.
    """
    if gray.shape != labels.shape:
        raise ValueError(f"gray {gray.shape} and labels {labels.shape} differ in shape")
    sizes, means = cluster_stats(gray, labels, int(labels.max()) + 1)
    cluster, warning = select_border_cluster(sizes, means, min_pixels)
    image_gray = float(gray.mean())
    if np.unique(labels).size == 1:
        collapsed = "the clustering collapsed to one cluster (check --lr): the mask is the whole image"
        warning = f"{warning}; {collapsed}" if warning else collapsed
    elif means[cluster] > image_gray:  # glands (dark nuclei) are darker than the image on average
        bright = (f"the selected cluster (mean gray {means[cluster]:.1f}) is brighter than the image "
                  f"({image_gray:.1f}): it is likely stroma or background, not glands")
        warning = f"{warning}; {bright}" if warning else bright
    return GlandSelection(cluster, float(means[cluster]), int(sizes[cluster]), warning)


def gland_pseudo_mask(gray: np.ndarray, labels: np.ndarray, min_pixels: int = 10000) -> np.ndarray:
    """``(H, W)`` bool gland mask: the pixels of :func:`select_gland_cluster`'s cluster (no post-processing).
    The fallback (no cluster larger than ``min_pixels``) is reported with :func:`warnings.warn`."""
    sel = select_gland_cluster(gray, labels, min_pixels)
    if sel.warning:
        warnings.warn(sel.warning, stacklevel=2)
    return labels == sel.cluster
