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

``fill_holes`` (opt-in, not in the paper) adds morphology to training: from ``start_iter`` on, the
background enclosed by the gland of the current prediction together with ``R`` (4-connected
components smaller than ``fill_holes`` input pixels that do not touch the patch edge) becomes gland
in ``R`` as well. It is the training-time form of SPM's hole filling and of ``predict.py
--fill-holes``: the pale lumen inside a predicted epithelial ring is taught as gland instead of
being filled after the fact. ``fill_frac`` logs the share of background it relabels.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from mmseg.registry import MODELS
from torch import nn
from torch.nn import functional as F

from common.morphology import fill_enclosed_holes
from common.proposals import BACKGROUND, BORDER, IGNORE, INTERIOR
from MSG.losses.msg_variation import border_anchor


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
        fill_holes: also relabel background enclosed by prediction and ``R`` in holes smaller than this
            many input pixels (None: off, as in the paper).
    """

    def __init__(self, delta: float = 0.0, band: int | None = 16, start_iter: int = 1000,
                 fill_holes: int | None = None) -> None:
        super().__init__()
        self.delta = delta
        self.band = band
        self.start_iter = start_iter
        self.fill_holes = fill_holes

    def active(self, iteration: int) -> bool:
        return iteration >= self.start_iter

    def forward(
        self, embeddings: torch.Tensor, proposal_small: torch.Tensor, proposal_full: torch.Tensor,
        predicted_gland: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns ``(R at proposal_full's resolution (B, H, W) long, stats)``.

        Args:
            embeddings: ``(B, D, h, w)``; proposal_small: ``(B, h, w)``; proposal_full: ``(B, H, W)``.
            predicted_gland: ``(B, H, W)`` bool, the current prediction (needed for ``fill_holes``).
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
        if self.fill_holes is not None:
            if predicted_gland is None:
                raise ValueError("MSGOmission(fill_holes=...) needs the predicted gland mask")
            filled = fill_target_holes(target, predicted_gland, self.fill_holes)
            stats["fill_frac"] = filled.sum().float() / n_bg.clamp(min=1).float()
        return target, stats


def fill_target_holes(target: torch.Tensor, predicted_gland: torch.Tensor, area: int) -> torch.Tensor:
    """Set to 1, in place, the background of ``target`` (``(B, H, W)`` 0/1/255) enclosed by
    ``target == 1`` or ``predicted_gland`` in holes smaller than ``area`` px; returns what was filled."""
    gland = ((target == 1) | predicted_gland.to(target.device)).cpu().numpy()
    filled = np.stack([fill_enclosed_holes(g, area) & ~g for g in gland])
    filled = torch.from_numpy(filled).to(target.device) & (target == BACKGROUND)
    target[filled] = 1
    return filled
