"""Crop images and their proposal maps into overlapping patches for MSG training.

    python tools/crop_img_and_gt.py IMG_DIR PROPOSAL_DIR OUT_DIR [--crop_size 256] [--stride 192] [--scale 0.5]
        [--only LIST]

Tiles cover the whole image: offsets 0, stride, 2*stride, ... and a last tile flush with the right /
bottom border. An image smaller than a crop is padded (image with 0, proposal with 255 = ignore).
Writes ``OUT_DIR/images/NAME_Y_X.png`` and ``OUT_DIR/proposals/NAME_Y_X.png`` (Y, X = tile offset in
the source), so patches can be merged back (:func:`merge_tiles`). Proposals are matched to images by
stem; an image without a proposal, or a map that is not a 0/1/2 proposal map (the original 0/127/254
maps are converted), is reported and skipped (exit 1). ``--scale`` resizes image (area) and proposal
(nearest) before tiling: the patches of the half-resolution recipe.
``--only LIST`` crops only the images a list names (the kept images of ``tools/screen_proposals.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from common.cli import exit_cleanly_on_sigterm, int_at_least, positive_float
from common.io import (
    InputError,
    check_outside_inputs,
    check_unique_stems,
    check_writable,
    is_image_file,
    list_files,
    read_bgr,
    read_mask_for,
    remove_stale_temp_files,
    write_png,
)
from common.proposals import IGNORE, as_proposal
from common.tiles import crop_tiles

PROPOSAL_PAD = IGNORE


def prepare_output(out: Path, inputs: list[Path], overwrite: bool) -> None:
    """Check ``out`` before any patch is written: not an input folder nor inside one, writable, and
    without patches of an earlier run (removed with ``overwrite``), so old and new patches never mix."""
    check_outside_inputs(out, inputs)
    for folder in (out / "images", out / "proposals"):
        check_writable(folder)
        remove_stale_temp_files(folder)
        old = list(folder.glob("*.png"))
        if old and not overwrite:
            raise InputError(folder, f"holds {len(old)} patches of an earlier run; pass --overwrite to replace "
                                     "them or choose an empty output folder")
        for f in old:
            f.unlink()


def only_listed(files: list[Path], listing: Path) -> list[Path]:
    """The ``files`` whose stems ``listing`` names (one per line; blank lines ignored)."""
    try:
        wanted = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(listing, f"cannot read the image list ({getattr(err, 'strerror', None) or err})") from None
    by_stem = {f.stem: f for f in files}
    missing = [s for s in wanted if s not in by_stem]
    if missing:
        raise InputError(listing, f"lists {len(missing)} image(s) not in the image folder: {', '.join(missing[:5])}"
                                  + (", ..." if len(missing) > 5 else ""))
    if not wanted:
        raise InputError(listing, "lists no image")
    keep = set(wanted)
    return [f for f in files if f.stem in keep]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Crop images and proposal maps into training patches")
    p.add_argument("img_dir")
    p.add_argument("proposal_dir")
    p.add_argument("out_dir")
    p.add_argument("--crop_size", type=int_at_least(1), default=256)
    p.add_argument("--stride", type=int_at_least(1), help="default: 3/4 of the crop size (192 for 256)")
    p.add_argument("--scale", type=positive_float, default=1.0,
                   help="resize images (area) and proposals (nearest) by this factor before cropping")
    p.add_argument("--only", type=Path, metavar="LIST",
                   help="crop only the images whose stems this file lists, one per line (e.g. the kept.txt of "
                        "tools/screen_proposals.py); a listed stem without an image is refused")
    p.add_argument("--overwrite", action="store_true",
                   help="remove the patches already in OUT_DIR first (otherwise a non-empty OUT_DIR is refused)")
    args = p.parse_args(argv)
    if args.stride is None:
        args.stride = max(1, round(0.75 * args.crop_size))
    if args.stride > args.crop_size:
        p.error(f"--stride {args.stride} > --crop_size {args.crop_size} would leave bands of the image uncovered")
    exit_cleanly_on_sigterm()
    out = Path(args.out_dir)
    n_images = n_tiles = 0
    errors = []
    try:
        files = [f for f in list_files(args.img_dir) if is_image_file(f)]
        check_unique_stems(files)
        if args.only is not None:
            files = only_listed(files, args.only)
        prepare_output(out, [Path(args.img_dir), Path(args.proposal_dir)], args.overwrite)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in tqdm(files, disable=None, dynamic_ncols=True, unit="img"):
        try:
            image, _ = read_bgr(path)
            proposal_path = Path(args.proposal_dir) / f"{path.stem}.png"
            proposal = as_proposal(proposal_path, read_mask_for(proposal_path, image.shape,
                                                                "no proposal map for this image"))
        except InputError as err:
            errors.append(str(err))
            print(f"error: {err}", file=sys.stderr)
            continue
        if args.scale != 1.0:
            size = (max(1, round(image.shape[1] * args.scale)), max(1, round(image.shape[0] * args.scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            proposal = cv2.resize(proposal, size, interpolation=cv2.INTER_NEAREST)
        img_tiles = crop_tiles(image, args.crop_size, args.stride, 0)
        prop_tiles = crop_tiles(proposal, args.crop_size, args.stride, PROPOSAL_PAD)
        written: list[Path] = []
        try:
            for (y, x), tile in img_tiles.items():
                for folder, array in (("images", tile), ("proposals", prop_tiles[(y, x)])):
                    target = out / folder / f"{path.stem}_{y}_{x}.png"
                    write_png(target, array)
                    written.append(target)
        except OSError as err:  # disk full, folder gone: no image is left half-tiled
            for target in written:
                target.unlink(missing_ok=True)
            print(f"error: {out}: cannot write the patches of {path} ({err.strerror or err})", file=sys.stderr)
            return 2
        n_images += 1
        n_tiles += len(img_tiles)
    print(f"cropped {n_images} images into {n_tiles} patches of {args.crop_size} (stride {args.stride}) "
          f"in {out}; {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
