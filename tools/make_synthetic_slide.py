"""Write a synthetic whole slide: a tiled pyramidal TIFF (RGB, deflate, SubIFD levels, resolution tags)
of synthetic H&E tissue on white glass, and its gland mask as a PNG -- the slide tool's example input.

    python tools/make_synthetic_slide.py glas/synthetic_slide.tif [--height 2400 --width 3200 --mpp 0.62
                                                                   --seed 0 --no-mpp]

``--no-mpp`` leaves the resolution tags out (a slide the slide tool needs ``--mpp`` for).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.cli import int_at_least, positive_float
from common.io import atomic_output, write_png
from common.synthetic import make_synthetic_slide


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the slide to write (.tif); its mask goes beside it as <stem>_mask.png")
    p.add_argument("--height", type=int_at_least(64), default=2400)
    p.add_argument("--width", type=int_at_least(64), default=3200)
    p.add_argument("--mpp", type=positive_float, default=0.62, help="µm per pixel written in the resolution tags")
    p.add_argument("--no-mpp", action="store_true", help="write no resolution tags")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rgb, gland = make_synthetic_slide(np.random.default_rng(args.seed), args.height, args.width)
    write_pyramid_tiff(args.out, rgb, None if args.no_mpp else args.mpp)
    write_png(args.out.with_name(f"{args.out.stem}_mask.png"), gland.astype(np.uint8) * 255)
    print(f"wrote {args.out} ({args.width}x{args.height} px, "
          f"{'no resolution' if args.no_mpp else f'{args.mpp} µm/px'}) and its gland mask")
    return 0


if __name__ == "__main__":
    sys.exit(main())
