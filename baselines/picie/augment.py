"""PiCIE's transforms: the geometric one (equivariance; on images and feature maps) and the photometric
jitter (invariance), plus the image-to-tensor conversions."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class GeomParams:
    """A crop (relative: side ``int(scale * size)`` at ``round((size - side) * u)``) then flips."""

    scale: float = 1.0
    u_top: float = 0.0
    u_left: float = 0.0
    hflip: bool = False
    vflip: bool = False


def random_geometric(rng: np.random.Generator | int, min_scale: float = 0.5, hflip: bool = True,
                     vflip: bool = False) -> GeomParams:
    """Draw a :class:`GeomParams` (``scale ~ U(min_scale, 1)``, flips with p = 0.5 where enabled)."""
    rng = np.random.default_rng(rng)
    scale, u_top, u_left, ph, pv = rng.uniform(size=5)
    return GeomParams(float(min_scale + (1 - min_scale) * scale), float(u_top), float(u_left),
                      bool(hflip and ph < 0.5), bool(vflip and pv < 0.5))


def _crop_box(size: int, scale: float, u: float) -> tuple[int, int]:
    side = max(1, int(scale * size))
    return round((size - side) * u), side


def apply_geometric(x: torch.Tensor, params: GeomParams, out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Crop + flip ``(B, C, H, W)`` (an image or a feature map, each in its own pixel grid).

    The crop is resized (bilinear, ``align_corners=False``) to ``out_size`` (default ``(H, W)``: the
    original resizes back to the input resolution); ``out_size=(0, 0)`` keeps the crop's own size.
    """
    h, w = x.shape[-2:]
    top, sh = _crop_box(h, params.scale, params.u_top)
    left, sw = _crop_box(w, params.scale, params.u_left)
    y = x[..., top:top + sh, left:left + sw]
    size = (h, w) if out_size is None else out_size
    if size != (0, 0) and tuple(y.shape[-2:]) != tuple(size):
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
    if params.hflip:
        y = y.flip(-1)
    if params.vflip:
        y = y.flip(-2)
    return y


@dataclass(frozen=True)
class JitterParams:
    """Photometric jitter of one view (factors of 1 / shift 0 / False: the step is off)."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    gray: bool = False
    blur_sigma: float = 0.0


def random_jitter(rng: np.random.Generator | int) -> JitterParams:
    """The original's invariance transforms: brightness/contrast/saturation ``U(0.7, 1.3)``, hue ``U(-0.1, 0.1)``,
    each applied with p = 0.8; grayscale p = 0.2; Gaussian blur ``sigma ~ U(0.1, 2)`` with p = 0.5."""
    rng = np.random.default_rng(rng)
    p = rng.uniform(size=6)
    v = rng.uniform(size=5)
    return JitterParams(
        brightness=float(0.7 + 0.6 * v[0]) if p[0] < 0.8 else 1.0,
        contrast=float(0.7 + 0.6 * v[1]) if p[1] < 0.8 else 1.0,
        saturation=float(0.7 + 0.6 * v[2]) if p[2] < 0.8 else 1.0,
        hue=float(-0.1 + 0.2 * v[3]) if p[3] < 0.8 else 0.0,
        gray=bool(p[4] < 0.2),
        blur_sigma=float(0.1 + 1.9 * v[4]) if p[5] < 0.5 else 0.0,
    )


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def apply_jitter(x: torch.Tensor, p: JitterParams) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> jittered, clamped to [0, 1]."""
    x = (x * p.brightness).clamp(0, 1)
    x = (_gray(x).mean((2, 3), keepdim=True) * (1 - p.contrast) + x * p.contrast).clamp(0, 1)
    x = (_gray(x) * (1 - p.saturation) + x * p.saturation).clamp(0, 1)
    if p.hue:
        rgb2yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        a = 2 * math.pi * p.hue
        rot = x.new_tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        m = torch.linalg.inv(rgb2yiq) @ rot @ rgb2yiq
        x = torch.einsum("ij,bjhw->bihw", m, x).clamp(0, 1)
    if p.gray:
        x = _gray(x).expand_as(x).contiguous()
    if p.blur_sigma > 0:
        r = max(1, math.ceil(2 * p.blur_sigma))
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        g = torch.exp(-t ** 2 / (2 * p.blur_sigma ** 2))
        g = g / g.sum()
        c = x.shape[1]
        x = F.pad(x, (r, r, r, r), mode="reflect") if min(x.shape[-2:]) > r else F.pad(x, (r, r, r, r), "replicate")
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
        x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)
    return x


def normalize_image(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> ImageNet mean/std normalised (the original's ``TensorTransform``)."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def rgb_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 BGR -> ``(1, 3, H, W)`` float32 RGB in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image_bgr[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32)
                            / 255.0)
