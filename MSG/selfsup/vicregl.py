"""Dense VICReg pretraining of a segmentation backbone (VICRegL, Bardes, Ponce & LeCun, NeurIPS 2022).

Why VICRegL here: no momentum encoder and no queue of negatives (DenseCL, PixPro need both), so one
forward/backward pass of the two views is the whole step on 2 CPU cores; its variance term prevents
collapse without large batches of negatives, which 85 training images could not supply anyway; and
its local term trains the stride-8 feature map the segmentation heads read, not only a pooled vector.

The loss is ``w_global * VICReg(global) + (1 - w_global) * VICReg(local)`` (the CPU config uses the
local term alone, ``w_global = 0``: see ``configs/selfsup/``):

* global: average-pooled backbone features -> MLP expander -> VICReg over the batch;
* local: the backbone's dense map -> 1x1-conv projector -> features read (bilinear) at the *same
  tissue points* of both views (the views' geometry is known, :mod:`MSG.selfsup.views`) -> VICReg
  over all points of the batch. VICRegL also matches by feature similarity; with exact
  correspondences that second matching is left out.

VICReg (Bardes et al., ICLR 2022) on ``(N, D)`` embeddings ``z1, z2``:
``inv * mean((z1 - z2)^2) + var * (V(z1) + V(z2)) / 2 + cov * (C(z1) + C(z2))``, with
``V(z) = mean_d relu(1 - sqrt(var_d(z) + eps))`` and ``C(z) = sum_{i != j} cov(z)_{ij}^2 / D``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from MSG.selfsup.views import ViewGeometry, overlap_points, source_to_view


@dataclass(frozen=True)
class VICRegWeights:
    inv: float = 25.0
    var: float = 25.0
    cov: float = 1.0
    eps: float = 1e-4


def vicreg_terms(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """Invariance, variance and covariance terms of VICReg for ``(N, D)`` embeddings (computed in fp32)."""
    z1, z2 = z1.float(), z2.float()
    n, d = z1.shape
    inv = F.mse_loss(z1, z2)

    def var_cov(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z - z.mean(0)
        std = torch.sqrt(z.var(0) + eps)
        cov = (z.T @ z) / (n - 1)
        off = cov.pow(2).sum() - cov.diagonal().pow(2).sum()
        return F.relu(1 - std).mean(), off / d

    v1, c1 = var_cov(z1)
    v2, c2 = var_cov(z2)
    return dict(inv=inv, var=(v1 + v2) / 2, cov=c1 + c2)


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, w: VICRegWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    terms = vicreg_terms(z1, z2, w.eps)
    return w.inv * terms["inv"] + w.var * terms["var"] + w.cov * terms["cov"], terms


def corresponding_grids(g1: list[ViewGeometry], g2: list[ViewGeometry], grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``grid_sample`` grids ``(B, grid, grid, 2)`` for each view, at the same source points."""
    grids1, grids2 = [], []
    for a, b in zip(g1, g2, strict=True):
        pts = overlap_points(a, b, grid)
        grids1.append(source_to_view(pts, a).view(grid, grid, 2))
        grids2.append(source_to_view(pts, b).view(grid, grid, 2))
    return torch.stack(grids1), torch.stack(grids2)


def _mlp(channels: list[int], conv: bool) -> nn.Sequential:
    """Linear (or 1x1 conv) -> BN -> ReLU blocks, the last layer plain (VICReg's expander)."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
        last = i == len(channels) - 2
        layers.append(nn.Conv2d(cin, cout, 1, bias=last) if conv else nn.Linear(cin, cout, bias=last))
        if not last:
            layers += [nn.BatchNorm2d(cout) if conv else nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class DenseVICReg(nn.Module):
    """A backbone with VICRegL's global expander and dense projector.

    Args:
        backbone: returns a tuple of feature maps; ``feature_index`` picks the one trained
            (``(B, C, H/8, W/8)`` for WideRes38's last output).
        in_channels: ``C``.
        global_dims: expander widths after ``C`` (last = embedding size).
        local_dims: dense projector widths after ``C``.
        grid: points per side read from each view's overlap.
        global_weight: weight of the global term (the local one gets ``1 - global_weight``).
    """

    def __init__(self, backbone: nn.Module, in_channels: int, global_dims: tuple[int, ...] = (1024, 1024),
                 local_dims: tuple[int, ...] = (512, 256), feature_index: int = -1, grid: int = 7,
                 global_weight: float = 0.5, weights: VICRegWeights | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_index = feature_index
        self.expander = _mlp([in_channels, *global_dims], conv=False)
        self.projector = _mlp([in_channels, *local_dims], conv=True)
        self.grid = grid
        self.global_weight = global_weight
        self.weights = weights or VICRegWeights()

    def forward(self, view1: torch.Tensor, view2: torch.Tensor, geom1: list[ViewGeometry],
                geom2: list[ViewGeometry]) -> dict[str, torch.Tensor]:
        """``(B, 3, S, S)`` views and their geometries -> ``loss`` (scalar, fp32) and its parts."""
        b = view1.shape[0]
        feats = self.backbone(torch.cat([view1, view2]))[self.feature_index]
        if self.global_weight > 0:
            pooled = self.expander(feats.mean((2, 3)))
            g_loss, g_terms = vicreg_loss(pooled[:b], pooled[b:], self.weights)
        else:  # dense term only: the expander is not run
            g_loss = feats.new_zeros((), dtype=torch.float32)
            g_terms = {k: g_loss for k in ("inv", "var", "cov")}
        dense = self.projector(feats).float()
        grid1, grid2 = corresponding_grids(geom1, geom2, self.grid)
        z1 = F.grid_sample(dense[:b], grid1.to(dense), mode="bilinear", align_corners=False)
        z2 = F.grid_sample(dense[b:], grid2.to(dense), mode="bilinear", align_corners=False)
        d = z1.shape[1]
        l_loss, l_terms = vicreg_loss(z1.permute(0, 2, 3, 1).reshape(-1, d), z2.permute(0, 2, 3, 1).reshape(-1, d),
                                      self.weights)
        loss = self.global_weight * g_loss + (1 - self.global_weight) * l_loss
        out = dict(loss=loss, global_loss=g_loss.detach(), local_loss=l_loss.detach())
        out.update({f"global_{k}": v.detach() for k, v in g_terms.items()})
        out.update({f"local_{k}": v.detach() for k, v in l_terms.items()})
        # the backbone's own spread (not the projector's): a collapse signal for the log
        out["feat_std"] = F.normalize(feats.float().mean((2, 3)), dim=1).std(0).mean().detach()
        return out
