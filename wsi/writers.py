"""Per-slide outputs, each written atomically (temp file + rename): the pyramidal mask TIFF, the GeoJSON
and the overlay."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from common.io import atomic_output, write_bytes

MIN_PYRAMID_SIDE = 512


def _pyramid(image: np.ndarray, work_dir: Path, average: bool = False) -> list[np.ndarray]:
    """``image`` (uint8) and its 2x-downsampled levels down to ``MIN_PYRAMID_SIDE``, each on disk (memmap):
    the max of each 2x2 block (a gland pixel of a mask stays visible at every level) or, with
    ``average``, its rounded mean (a probability map keeps its values). Odd edges repeat their last pixel."""
    levels = [image]
    while max(levels[-1].shape) // 2 >= MIN_PYRAMID_SIDE:
        src = levels[-1]
        h, w = (src.shape[0] + 1) // 2, (src.shape[1] + 1) // 2
        dst = np.lib.format.open_memmap(work_dir / f"level{len(levels)}.npy", "w+", np.uint8, (h, w))
        for y in range(0, h, 2048):
            block = np.asarray(src[2 * y:2 * y + 4096])
            rows = 2 * ((block.shape[0] + 1) // 2)
            quads = np.pad(block, ((0, rows - block.shape[0]), (0, 2 * w - block.shape[1])), mode="edge")
            quads = quads.reshape(rows // 2, 2, w, 2)
            if average:
                dst[y:y + rows // 2] = (quads.sum(axis=(1, 3), dtype=np.uint16) + 2) // 4
            else:
                dst[y:y + rows // 2] = quads.max(axis=(1, 3))
        dst.flush()
        levels.append(dst)
    return levels


def write_mask_tiff(path: Path, mask: np.ndarray, mpp: float, work_dir: Path, average: bool = False) -> None:
    """A tiled (256^2), deflate-compressed pyramidal TIFF of the 0/255 ``mask`` with ``mpp`` µm/px
    resolution tags; reduced levels as SubIFDs (the layout QuPath, Bio-Formats and tifffile read).
    ``average``: the levels average 2x2 blocks instead of taking their max (for an 8-bit probability map)."""
    import tifffile

    levels = _pyramid(mask, work_dir, average)
    per_cm = 1e4 / mpp
    options = dict(tile=(256, 256), compression="zlib", photometric="minisblack", resolutionunit="CENTIMETER")

    with atomic_output(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=mask.size > 2**31) as tif:
        tif.write(levels[0], subifds=len(levels) - 1, resolution=(per_cm, per_cm), **options)
        for i, level in enumerate(levels[1:], start=1):
            tif.write(level, subfiletype=1, resolution=(per_cm / 2**i, per_cm / 2**i), **options)


def write_json(path: Path, data: dict) -> None:
    write_bytes(path, json.dumps(data, separators=(",", ":")).encode())


def overlay(thumbnail_rgb: np.ndarray, gland: np.ndarray) -> np.ndarray:
    """BGR overlay: glands tinted green with their outlines, on the slide's thumbnail."""
    bgr = cv2.cvtColor(thumbnail_rgb, cv2.COLOR_RGB2BGR)
    tinted = bgr.copy()
    tinted[gland] = (0.55 * tinted[gland] + 0.45 * np.array([0, 200, 0])).astype(np.uint8)
    contours, _ = cv2.findContours(gland.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(tinted, contours, -1, (0, 120, 0), 1)
    return tinted


def write_pyramid_tiff(path: Path, rgb: np.ndarray, mpp: float | None, tile: int = 256) -> None:
    """``rgb`` as a tiled pyramidal TIFF: level 0 plus 2x-downsampled SubIFD levels down to ~512 px."""
    import tifffile

    levels = [rgb]
    while max(levels[-1].shape[:2]) // 2 >= 512:
        src = levels[-1]
        h, w = src.shape[0] // 2 * 2, src.shape[1] // 2 * 2
        levels.append(src[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8))
    options = dict(tile=(tile, tile), compression="zlib", photometric="rgb")

    with atomic_output(path) as tmp, tifffile.TiffWriter(tmp) as tif:
        for i, level in enumerate(levels):
            extra = {} if mpp is None else dict(resolution=(1e4 / (mpp * 2**i),) * 2, resolutionunit="CENTIMETER")
            if i == 0:
                tif.write(level, subifds=len(levels) - 1, **options, **extra)
            else:
                tif.write(level, subfiletype=1, **options, **extra)
