"""Pictures for a person to look at: cluster colour maps and proposal overlays (BGR uint8)."""
from __future__ import annotations

import numpy as np

from SPM import BORDER, INTERIOR

# Fixed, distinguishable BGR colours (the original drew random ones per image).
_PALETTE = np.array(
    [
        [75, 25, 230], [75, 180, 60], [25, 225, 255], [200, 130, 0], [48, 130, 245],
        [180, 30, 145], [240, 240, 70], [230, 50, 240], [60, 245, 210], [212, 190, 250],
        [128, 128, 0], [255, 190, 220], [40, 110, 170], [200, 250, 255], [0, 0, 128],
    ],
    dtype=np.uint8,
)
BORDER_BGR = (0, 0, 255)
INTERIOR_BGR = (0, 200, 0)


def colorize_clusters(labels: np.ndarray) -> np.ndarray:
    """``(H, W)`` cluster ids -> ``(H, W, 3)`` BGR colour map."""
    return _PALETTE[labels.astype(np.intp) % len(_PALETTE)]


def clusters_from_colours(colours: np.ndarray) -> np.ndarray:
    """Inverse of :func:`colorize_clusters` for ids below the palette's length.

    Args:
        colours: ``(H, W, 3)`` BGR colour map as ``colorize_clusters`` wrote it (a lossless PNG).

    Returns:
        ``(H, W)`` int cluster ids, -1 where a pixel has no palette colour.
    """
    if colours.ndim != 3 or colours.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) colour map, got shape {colours.shape}")
    packed = colours.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    keys = _PALETTE.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    order = np.argsort(keys)
    pos = np.clip(np.searchsorted(keys[order], packed), 0, len(keys) - 1)
    ids = order[pos]
    return np.where(keys[ids] == packed, ids, -1)


def overlay_proposal(image_bgr: np.ndarray, proposal_map: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend border (red) and interior (green) of a 0/1/2 proposal map over the image."""
    out = image_bgr.astype(np.float32)
    for value, colour in ((BORDER, BORDER_BGR), (INTERIOR, INTERIOR_BGR)):
        sel = proposal_map == value
        out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(colour, np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
