"""Segment one slide: tissue tiles at the model's resolution, blended, stitched, polygonised, written.

Each finished tile's gland probability is kept on disk (``DIR/.<stem>.tiles/r<row>_c<col>.npy``,
float16, written atomically) until the slide's outputs are written, so an interrupted run resumes at
the first unfinished tile; the folder records the settings, and a resume with other settings is refused.
"""
from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from common.batch import claim_output_root
from common.io import InputError, probability_to_uint8, write_atomically, write_csv, write_png
from wsi.polygons import geojson, mask_polygons, merge_polygons
from wsi.reader import Slide, open_slide
from wsi.tiling import TileGrid
from wsi.tissue import grow, thumbnail, tissue_mask
from wsi.writers import overlay, write_json, write_mask_tiff

# The RGB tiles of one batch -> each tile's (tile, tile) float32 gland probability.
TilePredictor = Callable[[list[np.ndarray]], list[np.ndarray]]
SUMMARY_FIELDS = ("slide", "status", "level", "slide_mpp", "segmentation_mpp", "width", "height", "tiles",
                  "tissue_tiles", "glands", "gland_area_um2", "tissue_area_um2", "seconds", "warnings")


@dataclass(frozen=True)
class SlideSettings:
    """What shapes a slide's outputs (recorded beside the tile cache; a resume must match them)."""

    target_mpp: float
    tile: int = 1024
    overlap: int = 128
    mpp: float | None = None  # overrides the slide's own level-0 resolution
    model: str = ""  # the checkpoint's identity (name, size)
    tta: bool = False
    object_type: str = "annotation"


def choose_level(slide: Slide, factor: float) -> int:
    """The coarsest level at least as fine as the segmentation resolution (``factor`` level-0 px per
    segmentation px), so tiles are only ever shrunk to it, never magnified (level 0 if the slide is coarser)."""
    fine_enough = [i for i, d in enumerate(slide.level_downsamples) if d <= factor * 1.01]
    return max(fine_enough, key=lambda i: slide.level_downsamples[i]) if fine_enough else 0


def read_tile(slide: Slide, level: int, factor: float, x: int, y: int, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` RGB: the segmentation-level rectangle at ``(x, y)``, read from ``level`` and
    resampled to the segmentation resolution."""
    step = factor / slide.level_downsamples[level]  # level px per segmentation px
    lx, ly = math.floor(x * step), math.floor(y * step)
    lw, lh = max(1, round(width * step)), max(1, round(height * step))
    region = slide.read(level, lx, ly, lw, lh)
    if (lw, lh) == (width, height):
        return region
    interpolation = cv2.INTER_AREA if lw > width else cv2.INTER_LINEAR
    return cv2.resize(region, (width, height), interpolation=interpolation)


def _save_npy(path: Path, array: np.ndarray) -> None:
    write_atomically(path, lambda fh: np.save(fh, array))


def segment_slide(path: str | Path, predict: TilePredictor, out_dir: str | Path, settings: SlideSettings, *,
                  batch: int = 4, keep_tiles: bool = False, probabilities: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Segment the slide at ``path`` and write ``OUT/<stem>.geojson``, ``<stem>_mask.tif``,
    ``<stem>_overlay.png`` and ``<stem>.csv``; returns the summary row (``SUMMARY_FIELDS``).
    ``probabilities``: also ``<stem>_probability.tif``, the blended gland probability in 8 bits
    (``p = value / 255``), pyramidal like the mask (the mask is ``p > 0.5``).

    ``progress(done, total)`` is called after each batch of tiles.

    Raises:
        InputError: unreadable slide, unknown format, or no resolution and no ``settings.mpp``.
    """
    path, out_dir = Path(path), Path(out_dir)
    start = time.perf_counter()
    with open_slide(path) as slide:
        slide_mpp = settings.mpp or slide.mpp
        if slide_mpp is None:
            raise InputError(path, "no resolution (µm per pixel) in its metadata; pass --mpp, e.g. --mpp 0.25 "
                                   "for a 40x scan")
        w0, h0 = slide.level_dimensions[0]
        factor = settings.target_mpp / slide_mpp  # level-0 px per segmentation px
        width, height = max(1, round(w0 / factor)), max(1, round(h0 / factor))
        level = choose_level(slide, factor)
        grid = TileGrid(width, height, settings.tile, settings.overlap)
        thumb, thumb_scale = thumbnail(slide)
        tissue_core = tissue_mask(thumb, dilate=0)  # the tissue area; grown so edge tiles are kept
        tissue = grow(tissue_core, 2)
        to_thumb = factor * thumb_scale  # thumbnail px per segmentation px

        tile_h, tile_w = grid.tile_shape

        def has_tissue(row: int, col: int) -> bool:
            x, y = grid.origin(row, col)
            x0, y0 = math.floor(x * to_thumb), math.floor(y * to_thumb)
            x1, y1 = math.ceil((x + tile_w) * to_thumb), math.ceil((y + tile_h) * to_thumb)
            return bool(tissue[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].any())

        work = out_dir / f".{path.stem}.tiles"
        recorded = {**asdict(settings), "slide": path.name, "slide_mpp": slide_mpp}
        with claim_output_root(work, recorded, resume=True):
            tiles = [t for t in grid.tiles() if has_tissue(*t)]

            def tile_file(row: int, col: int) -> Path:
                return work / f"r{row}_c{col}.npy"

            todo = [t for t in tiles if not tile_file(*t).exists()]
            if progress:
                progress(len(tiles) - len(todo), len(tiles))
            for i in range(0, len(todo), batch):
                chunk = todo[i:i + batch]
                images = [read_tile(slide, level, factor, *grid.origin(r, c), tile_w, tile_h)
                          for r, c in chunk]
                for (r, c), prob in zip(chunk, predict(images), strict=True):
                    _save_npy(tile_file(r, c), prob.astype(np.float16))
                if progress:
                    progress(len(tiles) - len(todo) + i + len(chunk), len(tiles))
            tissue_set = set(tiles)

            def tile_prob(row: int, col: int) -> np.ndarray | None:
                if (row, col) not in tissue_set:
                    return None
                return np.load(tile_file(row, col)).astype(np.float32)

            mask = np.lib.format.open_memmap(work / "mask.npy", "w+", np.uint8, (height, width))
            probability = (np.lib.format.open_memmap(work / "probability.npy", "w+", np.uint8, (height, width))
                           if probabilities else None)
            polygons = []
            for row in range(grid.rows):
                for col in range(grid.cols):
                    x0, y0, x1, y1 = grid.block(row, col)
                    blended = grid.blend_block(row, col, tile_prob)
                    gland = blended > 0.5
                    mask[y0:y1, x0:x1] = gland.astype(np.uint8) * 255
                    if probability is not None:
                        probability[y0:y1, x0:x1] = probability_to_uint8(blended)
                    polygons.extend(mask_polygons(gland, x0, y0))
            mask.flush()
            glands = merge_polygons(polygons)
            out_dir.mkdir(parents=True, exist_ok=True)
            write_mask_tiff(out_dir / f"{path.stem}_mask.tif", mask, settings.target_mpp, work)
            if probability is not None:
                probability.flush()
                write_mask_tiff(out_dir / f"{path.stem}_probability.tif", probability, settings.target_mpp, work,
                                average=True)
                del probability
            write_json(out_dir / f"{path.stem}.geojson",
                       geojson(glands, factor, object_type=settings.object_type))
            step = max(1, int(1 / to_thumb))
            small = cv2.resize(np.ascontiguousarray(mask[::step, ::step]), thumb.shape[1::-1],
                               interpolation=cv2.INTER_NEAREST) > 0
            write_png(out_dir / f"{path.stem}_overlay.png", overlay(thumb, small))
            gland_px = sum(p.area for p in glands)
            tissue_px = int(tissue_core.sum())
            row = {"slide": path.name, "status": "ok", "level": level, "slide_mpp": f"{slide_mpp:.4f}",
                   "segmentation_mpp": f"{settings.target_mpp:.4f}", "width": width, "height": height,
                   "tiles": grid.rows * grid.cols, "tissue_tiles": len(tiles), "glands": len(glands),
                   "gland_area_um2": f"{gland_px * settings.target_mpp ** 2:.0f}",
                   "tissue_area_um2": f"{tissue_px * (slide_mpp / thumb_scale) ** 2:.0f}",
                   "seconds": f"{time.perf_counter() - start:.1f}", "warnings": ""}
            write_csv(out_dir / f"{path.stem}.csv", [row], SUMMARY_FIELDS)
            del mask
        if not keep_tiles:
            shutil.rmtree(work, ignore_errors=True)
    return row
