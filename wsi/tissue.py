"""A low-resolution view of the slide and the tissue on it, so that tiles of bare glass are skipped."""
from __future__ import annotations

import cv2
import numpy as np

from wsi.reader import Slide

CHUNK = 2048
# Saturation (0-255) below which a pixel is glass whatever Otsu says: a slide with little tissue
# would otherwise split its glass into two classes.
MIN_SATURATION = 20


def thumbnail(slide: Slide, max_side: int = 2048) -> tuple[np.ndarray, float]:
    """``(rgb, scale)``: the slide at most ``max_side`` px a side, and thumbnail px per level-0 px.

    Reads the coarsest level at least as fine as the thumbnail, chunk by chunk (bounded memory even for
    a slide without a pyramid).
    """
    w0, h0 = slide.level_dimensions[0]
    factor = max(1.0, max(w0, h0) / max_side)
    level = max((i for i, d in enumerate(slide.level_downsamples) if d <= factor * 1.001), default=0,
                key=lambda i: slide.level_downsamples[i])
    down = slide.level_downsamples[level]
    lw, lh = slide.level_dimensions[level]
    scale = 1.0 / factor
    tw, th = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    out = np.full((th, tw, 3), 255, np.uint8)
    step = down * scale  # thumbnail px per level px
    for y in range(0, lh, CHUNK):
        for x in range(0, lw, CHUNK):
            w, h = min(CHUNK, lw - x), min(CHUNK, lh - y)
            tx0, ty0 = round(x * step), round(y * step)
            tx1, ty1 = min(tw, round((x + w) * step)), min(th, round((y + h) * step))
            if tx1 <= tx0 or ty1 <= ty0:
                continue
            region = slide.read(level, x, y, w, h)
            out[ty0:ty1, tx0:tx1] = cv2.resize(region, (tx1 - tx0, ty1 - ty0), interpolation=cv2.INTER_AREA)
    return out, scale


def tissue_mask(rgb: np.ndarray, dilate: int = 2) -> np.ndarray:
    """``(H, W)`` bool: tissue on a low-resolution RGB view (Otsu on saturation, floor ``MIN_SATURATION``),
    specks removed and the rest dilated by ``dilate`` px so tiles at the tissue's edge are kept."""
    saturation = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1], (5, 5), 0)
    otsu, _ = cv2.threshold(saturation, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    tissue = (saturation > max(otsu, MIN_SATURATION)).astype(np.uint8)
    tissue = cv2.morphologyEx(tissue, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return grow(tissue.astype(bool), dilate)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated by ``pixels`` (a square neighbourhood)."""
    if not pixels:
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)).astype(bool)
