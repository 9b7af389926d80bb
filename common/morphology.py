"""Binary morphology shared by SPM's post-processing, MSG's training-time hole filling and prediction.

Connectivity is scikit-image's default used by the original SPM code (``connectivity=1``: the
4-neighbourhood for objects and holes); "smaller than" is strict, as in skimage.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

_CROSS = ndimage.generate_binary_structure(2, 1)


def remove_small_objects(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop 4-connected foreground components with fewer than ``min_size`` pixels."""
    mask = mask.astype(bool)
    labelled, n = ndimage.label(mask, structure=_CROSS)
    if n == 0:
        return mask
    sizes = np.bincount(labelled.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labelled]


def remove_small_holes(mask: np.ndarray, area_threshold: int) -> np.ndarray:
    """Fill 4-connected background components with fewer than ``area_threshold`` pixels.

    As in skimage, every background component counts as a hole, including one that touches
    the image border.
    """
    mask = mask.astype(bool)
    return ~remove_small_objects(~mask, area_threshold)


def fill_enclosed_holes(mask: np.ndarray, area_threshold: int) -> np.ndarray:
    """Fill 4-connected background components with fewer than ``area_threshold`` pixels that do not
    touch the array's edge (on a training patch a component at the edge may continue outside it)."""
    mask = mask.astype(bool)
    labelled, n = ndimage.label(~mask, structure=_CROSS)
    if n == 0:
        return mask
    sizes = np.bincount(labelled.ravel())
    fill = sizes < area_threshold
    edge = np.unique(np.concatenate([labelled[0], labelled[-1], labelled[:, 0], labelled[:, -1]]))
    fill[edge] = False
    fill[0] = False
    return mask | fill[labelled]
