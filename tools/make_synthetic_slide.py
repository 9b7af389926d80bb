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
from common.io import write_png
from common.synthetic import make_synthetic_slide
from wsi.writers import write_pyramid_tiff


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
