"""MSG for Omission: relabel background pixels whose embeddings group with the gland.

Built each training step from *detached* embeddings ``e`` (L2-normalised, ``(B, D, h, w)``) and
the proposal ``P`` at ``h x w`` (0 background, 1 border, 2 interior, 255 ignore). Per image,
with ``a`` the border anchor of MSG for Variation and ``b`` the background prototype:

    b      = normalize( mean_{j : P_j = 0} e_j )
    relabel_j  <=>  P_j = 0  and  cos(e_j, a) > cos(e_j, b) + delta
                    and  dist(j, {i : P_i in {1, 2}}) <= band      (Chebyshev, in embedding pixels)

The refined proposal is ``R = 1`` on ``P in {1, 2}`` and on relabelled pixels, ``0`` on the other
background pixels, ``255`` where ``P`` is ignore. The relabel mask is decided at the embedding
resolution and upsampled (nearest) to the label resolution, where it only turns background into
gland, so ``R`` keeps the proposal's full-resolution detail.

The prediction is then supervised by ``L_O = CE(prediction, R)``, which replaces the plain CE on
``P`` from ``start_iter`` on (before that the embeddings are untrained and ``R = P``). Images without
border or without background pixels are not relabelled. ``band`` is given in *input* pixels
(default 16) and converted with the embedding stride; ``None`` means anywhere.
"""
from __future__ import annotations

import math

import torch
from mmseg.registry import MODELS
from torch import nn
from torch.nn import functional as F

from MSG.losses.msg_variation import border_anchor
from SPM import BACKGROUND, BORDER, INTERIOR

IGNORE = 255


def refine_proposal(
    embeddings: torch.Tensor, proposal: torch.Tensor, delta: float = 0.0, band: int | None = None
) -> torch.Tensor:
    """Relabel mask ``(B, h, w)`` bool at the embedding resolution (see module docstring).

    Args:
        embeddings: ``(B, D, h, w)``.
        proposal: ``(B, h, w)`` integer map.
        delta: margin by which the anchor must beat the background prototype.
        band: max Chebyshev distance to the proposal's gland region, in embedding pixels; None = anywhere.
    """
    with torch.no_grad():
        e = F.normalize(embeddings.detach().float(), dim=1)
        anchors, has_border = border_anchor(e, proposal)
        background = proposal == BACKGROUND
        bg = background.float()
        bg_count = bg.sum((1, 2))
        protos = F.normalize(torch.einsum("bdhw,bhw->bd", e, bg) / bg_count.clamp(min=1)[:, None], dim=1)
        cos_a = torch.einsum("bdhw,bd->bhw", e, anchors)
        cos_b = torch.einsum("bdhw,bd->bhw", e, protos)
        relabel = background & (cos_a > cos_b + delta)
        relabel &= (has_border & (bg_count > 0))[:, None, None]
        if band is not None:
            gland = ((proposal == BORDER) | (proposal == INTERIOR)).float()[:, None]
            near = F.max_pool2d(gland, 2 * band + 1, stride=1, padding=band)[:, 0] > 0
            relabel &= near
    return relabel


def binary_target(proposal: torch.Tensor) -> torch.Tensor:
    """0/1/2/255 proposal -> 0 background / 1 gland / 255 ignore (same shape, long)."""
    target = (proposal == BORDER) | (proposal == INTERIOR)
    return torch.where(proposal == IGNORE, torch.full_like(proposal, IGNORE), target.long())


@MODELS.register_module()
class MSGOmission(nn.Module):
    """Builds the refined proposal ``R``; the head's CE on ``R`` is ``L_O``.

    Args:
        delta: relabel when ``cos(e, a) > cos(e, b) + delta``.
        band: distance limit to the proposal's glands in input pixels; None = anywhere.
        start_iter: iteration from which ``R`` replaces ``P`` (default 1000 of 10k).
    """

    def __init__(self, delta: float = 0.0, band: int | None = 16, start_iter: int = 1000) -> None:
        super().__init__()
        self.delta = delta
        self.band = band
        self.start_iter = start_iter

    def active(self, iteration: int) -> bool:
        return iteration >= self.start_iter

    def forward(
        self, embeddings: torch.Tensor, proposal_small: torch.Tensor, proposal_full: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns ``(R at proposal_full's resolution (B, H, W) long, stats)``.

        Args:
            embeddings: ``(B, D, h, w)``; proposal_small: ``(B, h, w)``; proposal_full: ``(B, H, W)``.
        """
        band = None
        if self.band is not None:
            stride = proposal_full.shape[-1] / proposal_small.shape[-1]
            band = max(0, math.ceil(self.band / stride))
        relabel = refine_proposal(embeddings, proposal_small, self.delta, band)
        relabel_full = F.interpolate(relabel[:, None].float(), size=proposal_full.shape[-2:], mode="nearest")[:, 0] > 0
        relabel_full &= proposal_full == BACKGROUND
        target = binary_target(proposal_full)
        target[relabel_full] = 1
        n_bg = (proposal_full == BACKGROUND).sum()
        stats = {"relabel_frac": relabel_full.sum().float() / n_bg.clamp(min=1).float()}
        return target, stats
