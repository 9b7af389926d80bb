"""Synthetic H&E-like tissue: the sample the README's first command runs on, the tests' images and the
synthetic whole slide of the slide tool's example (no download needed).

Pink stroma with scattered stromal nuclei; glands drawn as rings of dark epithelial nuclei around pale
lumens.
"""
from __future__ import annotations

import cv2
import numpy as np

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


def make_synthetic_slide(
    rng: np.random.Generator, height: int, width: int, patch: int = 384
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic "slide": white glass with an elliptical piece of tissue made of synthetic patches.

    Returns:
        ``(image (H, W, 3) uint8 RGB, gland mask (H, W) bool)``.
    """
    image = np.full((height, width, 3), 245, np.uint8)
    gland = np.zeros((height, width), bool)
    tissue = np.zeros((height, width), np.uint8)
    cv2.ellipse(tissue, (width // 2, height // 2), (int(width * 0.45), int(height * 0.42)), 0, 0, 360, 1, -1)
    tissue = tissue.astype(bool)
    for y in range(0, height, patch):
        for x in range(0, width, patch):
            h, w = min(patch, height - y), min(patch, width - x)
            bgr, g, _ = make_synthetic_image(rng, h, w)
            inside = tissue[y:y + h, x:x + w]
            image[y:y + h, x:x + w][inside] = bgr[..., ::-1][inside]
            # a gland cut by the tissue edge keeps only its part on the tissue
            gland[y:y + h, x:x + w] = g & inside
    return image, gland
