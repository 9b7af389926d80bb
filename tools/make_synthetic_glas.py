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

import cv2
import numpy as np

from common.io import write_png

# RGB colours of H&E tissue components
STROMA = (228, 165, 196)
LUMEN = (246, 232, 240)
CYTOPLASM = (190, 120, 180)
NUCLEUS = (80, 40, 120)


def _rgb2bgr(c: tuple[int, int, int]) -> np.ndarray:
    return np.array(c[::-1], np.float32)


def make_synthetic_image(
    rng: np.random.Generator, height: int = 288, width: int = 384, n_glands: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic tile.

    Returns:
        ``(image (H, W, 3) uint8 BGR, gland mask (H, W) bool, epithelial ring (H, W) bool)``.
    """
    img = np.empty((height, width, 3), np.float32)
    img[:] = _rgb2bgr(STROMA)
    # low-frequency stain variation and fibre texture
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 12)
    img += (blotch / (np.abs(blotch).max() + 1e-6) * 12)[..., None]
    gland = np.zeros((height, width), np.uint8)
    lumen = np.zeros((height, width), np.uint8)
    n_glands = n_glands if n_glands is not None else max(2, (height * width) // 12000)
    scale = min(height, width)
    for _ in range(200):
        if n_glands == 0:
            break
        ax = int(rng.uniform(0.09, 0.17) * scale)
        ay = int(ax * rng.uniform(0.6, 1.0))
        cx = int(rng.uniform(ax + 4, width - ax - 4))
        cy = int(rng.uniform(ax + 4, height - ax - 4))
        angle = float(rng.uniform(0, 180))
        candidate = np.zeros_like(gland)
        cv2.ellipse(candidate, (cx, cy), (ax + 6, ay + 6), angle, 0, 360, 1, -1)
        if (candidate & gland).any():
            continue
        cv2.ellipse(gland, (cx, cy), (ax, ay), angle, 0, 360, 1, -1)
        thick = int(rng.uniform(0.35, 0.5) * ay)
        cv2.ellipse(lumen, (cx, cy), (ax - thick, ay - thick), angle, 0, 360, 1, -1)
        n_glands -= 1
    ring = gland.astype(bool) & ~lumen.astype(bool)
    img[ring] = _rgb2bgr(CYTOPLASM)
    img[lumen.astype(bool)] = _rgb2bgr(LUMEN)
    # dense epithelial nuclei in the ring, sparse stromal nuclei outside the glands
    nuclei = np.zeros((height, width), np.uint8)
    ys, xs = np.nonzero(ring)
    for i in rng.choice(len(ys), size=min(len(ys), len(ys) // 12), replace=False):
        cv2.circle(nuclei, (int(xs[i]), int(ys[i])), int(rng.integers(2, 4)), 1, -1)
    nuclei &= ring.astype(np.uint8)
    stroma_px = np.flatnonzero(~gland.astype(bool))
    for i in rng.choice(stroma_px, size=max(1, stroma_px.size // 1500), replace=False):
        cv2.circle(nuclei, (int(i % width), int(i // width)), int(rng.integers(1, 3)), 1, -1)
    img[nuclei.astype(bool)] = _rgb2bgr(NUCLEUS)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), gland.astype(bool), ring


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
