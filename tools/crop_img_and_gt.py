"""Crop images and their proposal maps into overlapping patches for MSG training.

    python tools/crop_img_and_gt.py IMG_DIR PROPOSAL_DIR OUT_DIR [--crop_size 256 --stride 192]

Tiles cover the whole image: offsets 0, stride, 2*stride, ... and a last tile flush with the right /
bottom border. An image smaller than a crop is padded (image with 0, proposal with 255 = ignore).
Writes ``OUT_DIR/images/NAME_Y_X.png`` and ``OUT_DIR/proposals/NAME_Y_X.png`` (Y, X = tile offset in
the source), so patches can be merged back (:func:`merge_tiles`). Proposals are matched to images by
stem; an image without a proposal is reported and skipped (exit 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SPM.cli import exit_cleanly_on_sigterm, int_at_least
from SPM.io import (
    InputError,
    check_unique_stems,
    is_image_file,
    list_files,
    read_bgr,
    read_mask_for,
    remove_stale_temp_files,
    write_png,
)

PROPOSAL_PAD = 255


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Crop images and proposal maps into training patches")
    p.add_argument("img_dir")
    p.add_argument("proposal_dir")
    p.add_argument("out_dir")
    p.add_argument("--crop_size", type=int_at_least(1), default=256)
    p.add_argument("--stride", type=int_at_least(1), default=192)
    args = p.parse_args(argv)
    exit_cleanly_on_sigterm()
    out = Path(args.out_dir)
    n_images = n_tiles = 0
    errors = []
    try:
        files = [f for f in list_files(args.img_dir) if is_image_file(f)]
        check_unique_stems(files)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for folder in (out / "images", out / "proposals"):
        remove_stale_temp_files(folder)
    for path in files:
        try:
            image, _ = read_bgr(path)
            proposal = read_mask_for(Path(args.proposal_dir) / f"{path.stem}.png", image.shape,
                                     "no proposal map for this image").astype(np.uint8)
        except InputError as err:
            errors.append(str(err))
            print(f"error: {err}", file=sys.stderr)
            continue
        img_tiles = crop_tiles(image, args.crop_size, args.stride, 0)
        prop_tiles = crop_tiles(proposal, args.crop_size, args.stride, PROPOSAL_PAD)
        for (y, x), tile in img_tiles.items():
            write_png(out / "images" / f"{path.stem}_{y}_{x}.png", tile)
            write_png(out / "proposals" / f"{path.stem}_{y}_{x}.png", prop_tiles[(y, x)])
        n_images += 1
        n_tiles += len(img_tiles)
    print(f"cropped {n_images} images into {n_tiles} patches of {args.crop_size} (stride {args.stride}) "
          f"in {out}; {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
