"""Slides as pyramids of RGB levels: OpenSlide for the vendor formats (.svs, .ndpi, .mrxs, ...) and
tifffile for plain or pyramidal TIFF (SubIFD or multi-page pyramids, which OpenSlide's generic-TIFF
reader does not see as levels).

``Slide.read(level, x, y, width, height)`` returns ``(height, width, 3)`` uint8 RGB in that level's
pixels; whatever lies outside the level is white (glass), so tiles at the slide's edge need no
special case.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.io import InputError

OPENSLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"}
TIFF_SUFFIXES = {".tif", ".tiff"}
# An untiled TIFF level is decoded whole; above this many pixels that would not be "bounded memory".
MAX_UNTILED_PIXELS = 1 << 28
WHITE = 255


def is_slide_file(path: str | os.PathLike) -> bool:
    suffix = Path(path).suffix.lower()
    return suffix in OPENSLIDE_SUFFIXES or suffix in TIFF_SUFFIXES


class Slide:
    """A multi-resolution slide. ``level_dimensions[i]`` is ``(width, height)`` of level ``i``,
    ``level_downsamples[i]`` its downsample from level 0, ``mpp`` micrometres per level-0 pixel or None."""

    path: Path
    level_dimensions: list[tuple[int, int]]
    level_downsamples: list[float]
    mpp: float | None

    def read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _paste_region(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), WHITE, np.uint8)


def _as_rgb(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InputError(path, f"{array.dtype} pixels; slides of 8-bit RGB (or grey) are supported")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.shape[-1] == 4:
        return array[..., :3]
    if array.shape[-1] == 3:
        return array
    raise InputError(path, f"{array.shape[-1]} samples per pixel; RGB or grey slides are supported")


def _tiff_mpp(page) -> float | None:
    """Micrometres per pixel from the TIFF resolution tags, None when absent or implausible."""
    tags = page.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    if not num or not den or unit not in (2, 3):
        return None
    per_unit = num / den
    mpp = (25400.0 if unit == 2 else 10000.0) / per_unit
    # 72 or 96 dpi (350 or 265 um/px) are image-editor defaults, not a microscope's resolution.
    return mpp if 0.01 <= mpp <= 100 else None


class TiffSlide(Slide):
    """Plain or pyramidal TIFF through tifffile; tiles are decoded one by one (bounded memory)."""

    def __init__(self, path: str | os.PathLike) -> None:
        import tifffile

        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
            series = self._tif.series[0]
            self._pages = [level.keyframe for level in series.levels]
        except Exception as err:
            raise InputError(path, f"not a readable TIFF ({err.__class__.__name__}: {err})") from None
        base = self._pages[0]
        if base.planarconfig == 2 and base.samplesperpixel > 1:
            raise InputError(path, "planar (separate-sample) TIFF; save it with contiguous RGB samples")
        self.level_dimensions = [(int(p.imagewidth), int(p.imagelength)) for p in self._pages]
        self.level_downsamples = [self.level_dimensions[0][0] / w for w, _ in self.level_dimensions]
        self.mpp = _tiff_mpp(base)
        self._whole: dict[int, np.ndarray] = {}

    def _read_untiled(self, level: int) -> np.ndarray:
        if level not in self._whole:
            w, h = self.level_dimensions[level]
            if w * h > MAX_UNTILED_PIXELS:
                raise InputError(self.path, f"untiled TIFF level of {w}x{h} px; convert it to a tiled pyramid "
                                            "(e.g. vips tiffsave --tile --pyramid) to read it in bounded memory")
            self._whole[level] = _as_rgb(self._pages[level].asarray(), self.path)
        return self._whole[level]

    def read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        out = _paste_region(width, height)
        lw, lh = self.level_dimensions[level]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + width, lw), min(y + height, lh)
        if x1 <= x0 or y1 <= y0:
            return out
        page = self._pages[level]
        if not page.is_tiled:
            out[y0 - y:y1 - y, x0 - x:x1 - x] = self._read_untiled(level)[y0:y1, x0:x1]
            return out
        tw, th = int(page.tilewidth), int(page.tilelength)
        across = -(-lw // tw)
        fh = self._tif.filehandle
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                index = ty * across + tx
                fh.seek(page.dataoffsets[index])
                data = fh.read(page.databytecounts[index])
                try:
                    segment, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
                except Exception as err:  # tifffile raises several types for codecs it lacks
                    raise InputError(self.path, f"cannot decode its tiles ({err.__class__.__name__}: {err}); "
                                                "JPEG or JPEG 2000 TIFFs need `pip install imagecodecs`") from None
                tile = np.asarray(segment).reshape(th, tw, -1)
                tile = _as_rgb(tile[..., 0] if tile.shape[-1] == 1 else tile, self.path)
                gx, gy = tx * tw, ty * th
                sx0, sy0 = max(x0, gx), max(y0, gy)
                sx1, sy1 = min(x1, gx + tw), min(y1, gy + th)
                out[sy0 - y:sy1 - y, sx0 - x:sx1 - x] = tile[sy0 - gy:sy1 - gy, sx0 - gx:sx1 - gx]
        return out

    def close(self) -> None:
        self._tif.close()


class OpenSlideSlide(Slide):
    """Vendor formats through OpenSlide (the openslide-bin wheel carries the library)."""

    def __init__(self, path: str | os.PathLike) -> None:
        import openslide

        self.path = Path(path)
        try:
            self._slide = openslide.OpenSlide(str(self.path))
        except (openslide.OpenSlideError, OSError) as err:
            raise InputError(path, f"OpenSlide cannot read it ({err.__class__.__name__}: {err})") from None
        self.level_dimensions = [tuple(map(int, d)) for d in self._slide.level_dimensions]
        self.level_downsamples = [float(d) for d in self._slide.level_downsamples]
        mpp = self._slide.properties.get("openslide.mpp-x")
        try:
            self.mpp = float(mpp) if mpp else None
        except ValueError:
            self.mpp = None

    def read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        down = self.level_downsamples[level]
        rgba = np.asarray(self._slide.read_region((round(x * down), round(y * down)), level, (width, height)))
        alpha = rgba[..., 3:4].astype(np.float32) / 255.0
        # outside the scanned area OpenSlide returns transparent pixels: composite onto white glass
        rgb = rgba[..., :3].astype(np.float32) * alpha + WHITE * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        self._slide.close()


def open_slide(path: str | os.PathLike) -> Slide:
    """The slide at ``path``: TIFF through tifffile, vendor formats through OpenSlide.

    Raises:
        InputError: missing file, unknown format, or a file neither reader can open.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return TiffSlide(path)
    if suffix in OPENSLIDE_SUFFIXES:
        return OpenSlideSlide(path)
    raise InputError(path, f"unknown slide format ({suffix or 'no extension'}); readable: "
                           + ", ".join(sorted(OPENSLIDE_SUFFIXES | TIFF_SUFFIXES)))
