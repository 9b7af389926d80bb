"""Two augmented views of one histology image, with the geometry that relates them.

A view is a random resized crop of the source image (an integer box ``x0, y0, w, h`` in source
pixels), resampled to ``size x size``, then flipped and rotated by a multiple of 90 degrees (H&E
tissue has no canonical orientation), then photometrically perturbed: H&E stain jitter in the
haematoxylin-eosin-DAB space (Tellez et al., 2018), brightness / contrast / saturation jitter and
Gaussian blur. The second view's centre lies inside the first view, so the two always share tissue.

:func:`source_to_view` maps source pixel coordinates into a view's normalised ``[-1, 1]`` coordinates
(``grid_sample``'s ``align_corners=False`` convention), so features of the two views can be read at
the same tissue locations: the dense loss compares exactly corresponding points, with no matching by
feature similarity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from skimage.color import hed_from_rgb, rgb_from_hed
from torch.nn import functional as F

_HED_FROM_RGB = torch.tensor(hed_from_rgb, dtype=torch.float32)
_RGB_FROM_HED = torch.tensor(rgb_from_hed, dtype=torch.float32)
_LOG_EPS = math.log(1e-6)


@dataclass(frozen=True)
class ViewGeometry:
    """Where a view came from: crop box in source pixels, then flips, then ``rot90`` by ``k`` quarter turns."""

    x0: int
    y0: int
    w: int
    h: int
    hflip: bool = False
    vflip: bool = False
    k: int = 0


@dataclass(frozen=True)
class ViewConfig:
    """Augmentation settings (defaults: the histology recipe of ``configs/selfsup``)."""

    size: int = 128
    area: tuple[float, float] = (0.08, 0.5)  # crop area as a fraction of the image
    aspect: tuple[float, float] = (3 / 4, 4 / 3)
    stain_sigma: float = 0.05  # HED jitter: each stain scaled by U(1 - s, 1 + s) ...
    stain_shift: float = 0.005  # ... and shifted by U(-shift, shift) (stains are ~0.01-0.15 in rgb2hed units)
    color_jitter: float = 0.2  # brightness, contrast, saturation factors in U(1-c, 1+c)
    color_prob: float = 0.8
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)


def sample_box(rng: np.random.Generator, height: int, width: int, cfg: ViewConfig,
               centre: tuple[float, float] | None = None) -> tuple[int, int, int, int]:
    """A random crop box ``(x0, y0, w, h)`` inside the image; with ``centre`` the box is placed so
    that it contains that point."""
    area = rng.uniform(*cfg.area) * height * width
    aspect = math.exp(rng.uniform(math.log(cfg.aspect[0]), math.log(cfg.aspect[1])))
    w = int(min(width, max(8, round(math.sqrt(area * aspect)))))
    h = int(min(height, max(8, round(math.sqrt(area / aspect)))))
    if centre is None:
        x0 = int(rng.integers(0, width - w + 1))
        y0 = int(rng.integers(0, height - h + 1))
    else:  # any placement whose box holds the centre point (clipped to the image)
        cx, cy = centre
        lo_x, hi_x = max(0, math.ceil(cx - w + 1e-6)), min(width - w, math.floor(cx))
        lo_y, hi_y = max(0, math.ceil(cy - h + 1e-6)), min(height - h, math.floor(cy))
        x0 = int(rng.integers(lo_x, max(lo_x, hi_x) + 1))
        y0 = int(rng.integers(lo_y, max(lo_y, hi_y) + 1))
    return x0, y0, w, h


def sample_geometry(rng: np.random.Generator, height: int, width: int, cfg: ViewConfig,
                    centre: tuple[float, float] | None = None) -> ViewGeometry:
    x0, y0, w, h = sample_box(rng, height, width, cfg, centre)
    return ViewGeometry(x0, y0, w, h, bool(rng.random() < 0.5), bool(rng.random() < 0.5), int(rng.integers(0, 4)))


def apply_geometry(image: torch.Tensor, geom: ViewGeometry, size: int) -> torch.Tensor:
    """Crop ``(3, H, W)`` float ``image`` to the box, resize to ``size`` (antialiased bilinear), flip, rotate."""
    crop = image[:, geom.y0:geom.y0 + geom.h, geom.x0:geom.x0 + geom.w]
    view = F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    if geom.hflip:
        view = view.flip(-1)
    if geom.vflip:
        view = view.flip(-2)
    return torch.rot90(view, geom.k, dims=(-2, -1))


def source_to_view(points: torch.Tensor, geom: ViewGeometry) -> torch.Tensor:
    """``(..., 2)`` source ``(x, y)`` pixel coordinates (continuous: pixel ``i`` spans ``[i, i+1)``)
    -> the view's normalised ``(x, y)`` in ``[-1, 1]`` (``grid_sample``, ``align_corners=False``)."""
    x = 2 * (points[..., 0] - geom.x0) / geom.w - 1
    y = 2 * (points[..., 1] - geom.y0) / geom.h - 1
    if geom.hflip:
        x = -x
    if geom.vflip:
        y = -y
    for _ in range(geom.k % 4):  # torch.rot90 (k=1) moves the point at (x, y) to (y, -x)
        x, y = y, -x
    return torch.stack((x, y), dim=-1)


def overlap_points(a: ViewGeometry, b: ViewGeometry, grid: int) -> torch.Tensor:
    """``(grid * grid, 2)`` source coordinates spread evenly over the intersection of the two boxes
    (cell centres of a ``grid x grid`` partition); the boxes must intersect."""
    x_lo, x_hi = max(a.x0, b.x0), min(a.x0 + a.w, b.x0 + b.w)
    y_lo, y_hi = max(a.y0, b.y0), min(a.y0 + a.h, b.y0 + b.h)
    if x_hi <= x_lo or y_hi <= y_lo:
        raise ValueError("the two views do not overlap")
    steps = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    xs, ys = x_lo + steps * (x_hi - x_lo), y_lo + steps * (y_hi - y_lo)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1).reshape(-1, 2)


def stain_jitter(rgb: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """H&E(-DAB) stain jitter of ``(3, H, W)`` RGB in ``[0, 1]``: stains ``s -> alpha * s + beta`` per
    channel, in skimage's ``rgb2hed`` space (colour deconvolution of Ruifrok & Johnston)."""
    od = torch.log(rgb.clamp_min(1e-6)) / _LOG_EPS  # optical density scaled as in skimage.color.rgb2hed
    # not clamped at 0 (as rgb2hed does): colours outside the stains' cone then keep their hue, and
    # alpha = 1, beta = 0 returns the image unchanged
    stains = torch.einsum("chw,cd->dhw", od, _HED_FROM_RGB)
    stains = stains * alpha[:, None, None] + beta[:, None, None]
    log_rgb = torch.einsum("dhw,dc->chw", stains * _LOG_EPS, _RGB_FROM_HED)
    return torch.exp(log_rgb).clamp(0, 1)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * a + (1 - factor) * b).clamp(0, 1)


def color_jitter(rgb: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast and saturation factors in ``U(1 - strength, 1 + strength)``, in random order."""
    gray = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None]
    for op in rng.permutation(3):
        factor = rng.uniform(1 - strength, 1 + strength)
        if op == 0:
            rgb = (rgb * factor).clamp(0, 1)
        elif op == 1:
            rgb = _blend(rgb, gray.mean().expand_as(rgb), factor)
        else:
            rgb = _blend(rgb, gray.expand_as(rgb), factor)
        gray = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])[None]
    return rgb


def gaussian_blur(rgb: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(3, H, W)`` with reflect padding (radius ``3 sigma``)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=rgb.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(rgb[None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return x[0]


def photometric(rgb: torch.Tensor, rng: np.random.Generator, cfg: ViewConfig) -> torch.Tensor:
    """Stain jitter, then (with ``color_prob``) colour jitter, then (with ``blur_prob``) blur."""
    s, shift = cfg.stain_sigma, cfg.stain_shift
    if s > 0 or shift > 0:
        alpha = torch.tensor(rng.uniform(1 - s, 1 + s, 3), dtype=torch.float32)
        beta = torch.tensor(rng.uniform(-shift, shift, 3), dtype=torch.float32)
        rgb = stain_jitter(rgb, alpha, beta)
    if rng.random() < cfg.color_prob:
        rgb = color_jitter(rgb, rng, cfg.color_jitter)
    if rng.random() < cfg.blur_prob:
        rgb = gaussian_blur(rgb, float(rng.uniform(*cfg.blur_sigma)))
    return rgb


def make_pair(image: torch.Tensor, rng: np.random.Generator, cfg: ViewConfig
              ) -> tuple[torch.Tensor, torch.Tensor, ViewGeometry, ViewGeometry]:
    """Two views of ``(3, H, W)`` RGB ``image`` in ``[0, 1]``: ``(view1, view2, geom1, geom2)``, each view
    ``(3, size, size)``; view 2's box contains view 1's centre, so the views overlap."""
    _, height, width = image.shape
    g1 = sample_geometry(rng, height, width, cfg)
    g2 = sample_geometry(rng, height, width, cfg, centre=(g1.x0 + g1.w / 2, g1.y0 + g1.h / 2))
    v1 = photometric(apply_geometry(image, g1, cfg.size), rng, cfg)
    v2 = photometric(apply_geometry(image, g2, cfg.size), rng, cfg)
    return v1, v2, g1, g2
