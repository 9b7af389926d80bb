"""Overlapping tiles of an array: offsets that cover it, cropping with padding, and merging back."""
from __future__ import annotations

import numpy as np


def tile_offsets(length: int, crop: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``crop``; the last one flush with the end."""
    if crop <= 0 or stride <= 0:
        raise ValueError("crop and stride must be positive")
    if length <= crop:
        return [0]
    offsets = list(range(0, length - crop + 1, stride))
    if offsets[-1] != length - crop:
        offsets.append(length - crop)
    return offsets


def pad_to(array: np.ndarray, height: int, width: int, value: int) -> np.ndarray:
    h, w = array.shape[:2]
    if h >= height and w >= width:
        return array
    pad = [(0, max(0, height - h)), (0, max(0, width - w))] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, constant_values=value)


def crop_tiles(array: np.ndarray, crop: int, stride: int, pad_value: int) -> dict[tuple[int, int], np.ndarray]:
    """``{(y, x): tile}`` covering the (padded) array."""
    padded = pad_to(array, crop, crop, pad_value)
    h, w = padded.shape[:2]
    return {(y, x): padded[y : y + crop, x : x + crop]
            for y in tile_offsets(h, crop, stride) for x in tile_offsets(w, crop, stride)}


def merge_tiles(tiles: dict[tuple[int, int], np.ndarray], height: int, width: int) -> np.ndarray:
    """Inverse of :func:`crop_tiles` for the original ``height x width`` (padding dropped)."""
    first = next(iter(tiles.values()))
    crop = first.shape[0]
    out = np.zeros((max(height, crop), max(width, crop), *first.shape[2:]), first.dtype)
    for (y, x), tile in tiles.items():
        out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return out[:height, :width]
