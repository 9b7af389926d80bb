"""PiCIE training (per epoch: K-means on both views of the set, then training with fixed labels) and the
whole-image clustering of a trained model."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.picie.augment import (
    GeomParams,
    JitterParams,
    apply_geometric,
    apply_jitter,
    normalize_image,
    random_geometric,
    random_jitter,
    rgb_tensor,
)
from baselines.picie.kmeans import BALANCE_MODES, cluster_logits, cluster_weights, kmeans
from baselines.picie.loss import picie_loss
from baselines.picie.net import PiCIENet
from common.precision import bf16_supported


@dataclass
class PiCIEConfig:
    k: int = 5
    dim: int = 128
    epochs: int = 10
    width_mult: float = 0.25
    backbone_checkpoint: str | None = None  # tools/pretrain.py's backbone.pth; None: from scratch
    crop: int = 256
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    kmeans_iters: int = 20
    kmeans_max_points: int = 200_000
    min_scale: float = 0.5
    hflip: bool = True
    vflip: bool = False
    balance: str = "original"
    device: str = "cpu"


@dataclass
class _Sample:
    crop: torch.Tensor  # (1, 3, c, c) RGB [0, 1]
    geom: GeomParams
    jit1: JitterParams
    jit2: JitterParams


def _epoch_samples(images: Sequence[torch.Tensor], crop: int, cfg: PiCIEConfig, rng: np.random.Generator
                   ) -> list[_Sample]:
    out = []
    for img in images:
        h, w = img.shape[-2:]
        top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        out.append(_Sample(img[..., top:top + crop, left:left + crop],
                           random_geometric(rng, cfg.min_scale, cfg.hflip, cfg.vflip),
                           random_jitter(rng), random_jitter(rng)))
    return out


def _view_features(model: nn.Module, batch: list[_Sample], view: int, device: torch.device) -> torch.Tensor:
    """Normalised ``(B, D, h, w)`` features of view 1 (g on the image) or view 2 (g on the feature map)."""
    # bf16 autocast where native (as MSG's training): the network in bf16, features and losses in fp32
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16_supported(device))
    if view == 1:
        x = torch.cat([apply_geometric(apply_jitter(s.crop, s.jit1), s.geom) for s in batch])
        with autocast:
            f = model(normalize_image(x).to(device)).float()
    else:
        x = torch.cat([apply_jitter(s.crop, s.jit2) for s in batch])
        with autocast:
            f = model(normalize_image(x).to(device)).float()
        f = torch.cat([apply_geometric(f[i:i + 1], s.geom) for i, s in enumerate(batch)])
    return F.normalize(f, dim=1)


def train_picie(images: Sequence[np.ndarray], cfg: PiCIEConfig,
                log: Callable[[str], None] | None = None) -> tuple[PiCIENet, torch.Tensor]:
    """Train PiCIE on a set of images.

    Args:
        images: ``(H, W, 3)`` uint8 BGR arrays (any sizes; each at least 8 x 8).
        cfg: hyper-parameters (:class:`PiCIEConfig`).
        log: called with one line per epoch (time, K-means and loss values).

    Returns:
        ``(model, centroids)``: the trained network (eval mode) and ``(k, dim)`` centroids from a fresh
        K-means on the features of the un-augmented images (the original's ``--repeats 1``).
    """
    if cfg.balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {BALANCE_MODES}, got {cfg.balance!r}")
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tensors = [rgb_tensor(im) for im in images]
    crop = min(cfg.crop, *(min(t.shape[-2:]) for t in tensors))
    crop = max(8, crop - crop % 8)
    model = PiCIENet(cfg.dim, cfg.width_mult, cfg.backbone_checkpoint).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = len(tensors)
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        samples = _epoch_samples(tensors, crop, cfg, rng)
        model.eval()
        cents, labels, weights = [], [], []
        with torch.no_grad():
            for view in (1, 2):
                feats = torch.cat([_view_features(model, samples[i:i + cfg.batch], view, device)
                                   for i in range(0, n, cfg.batch)])
                flat = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])
                c = kmeans(flat, cfg.k, cfg.kmeans_iters, seed=cfg.seed * 1000 + epoch * 2 + view,
                           max_points=cfg.kmeans_max_points)
                lab = cluster_logits(feats, c, "euclidean").argmax(1)
                cents.append(c)
                labels.append(lab)
                weights.append(cluster_weights(torch.bincount(lab.flatten(), minlength=cfg.k), cfg.balance))
        model.train()
        order = rng.permutation(n)
        totals: dict[str, float] = {}
        steps = 0
        for i in range(0, n, cfg.batch):
            idx = order[i:i + cfg.batch].tolist()
            if len(idx) < 2 and n >= 2:  # a BatchNorm batch of one image is allowed only for a set of one
                continue
            batch = [samples[j] for j in idx]
            f1 = _view_features(model, batch, 1, device)
            f2 = _view_features(model, batch, 2, device)
            losses = picie_loss(f1, f2, cents[0], cents[1], labels[0][idx], labels[1][idx], weights[0], weights[1])
            opt.zero_grad()
            losses["total"].backward()
            opt.step()
            for key, v in losses.items():
                totals[key] = totals.get(key, 0.0) + v.item()
            steps += 1
        if log:
            mean = {k: v / max(steps, 1) for k, v in totals.items()}
            log(f"epoch {epoch + 1}/{cfg.epochs}: {time.perf_counter() - t0:.2f} s, {steps} steps, "
                f"loss {mean.get('total', float('nan')):.4f} (within {mean.get('within', float('nan')):.4f}, "
                f"across {mean.get('across', float('nan')):.4f})")
    model.eval()
    with torch.no_grad():
        feats = [whole_image_features(model, t.to(device)) for t in tensors]
        flat = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in feats])
        centroids = kmeans(flat, cfg.k, cfg.kmeans_iters, seed=cfg.seed * 1000 + 999,
                           max_points=cfg.kmeans_max_points)
    return model, centroids


# Reflect padding around a whole image at inference, in input pixels (a multiple of the stride 8). The
# network answers to the zero padding of its own edges: without it the last 4 feature rows and columns
# (32 input px, 64 px of a GlaS image at half resolution) formed a cluster of their own, a straight band
# along the bottom and right edges that moved with the image when it was flipped.
EDGE_PAD = 64


def whole_image_features(model: nn.Module, image: torch.Tensor, pad: int = EDGE_PAD) -> torch.Tensor:
    """L2-normalised ``(1, D, ceil(H/8), ceil(W/8))`` features of one ``(1, 3, H, W)`` RGB [0, 1] image,
    computed on the image reflect-padded by ``pad`` px (clamped to what the image allows) and cropped back."""
    h, w = image.shape[-2:]
    pad = min(pad, (min(h, w) - 1) // 8 * 8)
    x = normalize_image(image)
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    f = model(x)
    if pad > 0:
        c = pad // 8
        f = f[..., c:c + math.ceil(h / 8), c:c + math.ceil(w / 8)]
    return F.normalize(f, dim=1)


@torch.no_grad()
def cluster_images(model: nn.Module, images: Sequence[np.ndarray], centroids: torch.Tensor,
                   sizes: Sequence[tuple[int, int]] | None = None, upsample: str = "bilinear") -> list[np.ndarray]:
    """Global cluster ids per image.

    Args:
        model: a trained :class:`PiCIENet` (put in eval mode here).
        images: ``(H, W, 3)`` uint8 BGR arrays.
        centroids: ``(k, D)``.
        sizes: output ``(H, W)`` per image (default: the input size), e.g. the size before downscaling.
        upsample: ``"bilinear"`` logits then argmax (the original's ``evaluate``) or ``"nearest"`` on the ids.

    Returns:
        ``(H, W)`` int64 arrays of ids in ``0..k-1`` (dot-product classifier, as the original).
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i, im in enumerate(images):
        size = tuple(sizes[i]) if sizes is not None else im.shape[:2]
        f = whole_image_features(model, rgb_tensor(im).to(device))
        logits = cluster_logits(f, centroids.to(device))
        if upsample == "bilinear":
            ids = F.interpolate(logits, size=size, mode="bilinear", align_corners=False).argmax(1)
        elif upsample == "nearest":
            ids = F.interpolate(logits.argmax(1, keepdim=True).float(), size=size, mode="nearest")[:, 0].long()
        else:
            raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {upsample!r}")
        out.append(ids[0].cpu().numpy())
    return out
