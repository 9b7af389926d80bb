"""Generate a small synthetic H&E-like gland data set (images + ground-truth masks).

Pink stroma with scattered stromal nuclei; glands drawn as rings of dark epithelial nuclei
around pale lumens. Used by the README's first command and by the tests, so the project runs
end to end without downloading anything.

    python tools/make_synthetic_glas.py glas/synthetic [--num 3 --height 288 --width 384 --seed 0]

Writes ``OUT/images/synthetic_I.png`` (BGR), ``OUT/masks/synthetic_I.png`` (0/255 gland) and
``OUT/rings/synthetic_I.png`` (0/255 epithelial ring, the structure SPM's border should find).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.io import write_png
from common.synthetic import make_synthetic_image


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="output folder (images/, masks/, rings/ are created)")
    p.add_argument("--num", type=int, default=3)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    for i in range(1, args.num + 1):
        image, gland, ring = make_synthetic_image(rng, args.height, args.width)
        write_png(out / "images" / f"synthetic_{i}.png", image)
        write_png(out / "masks" / f"synthetic_{i}.png", gland.astype(np.uint8) * 255)
        write_png(out / "rings" / f"synthetic_{i}.png", ring.astype(np.uint8) * 255)
    print(f"wrote {args.num} synthetic images of {args.width}x{args.height} to {out}/images (masks in {out}/masks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
