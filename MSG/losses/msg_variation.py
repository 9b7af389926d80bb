"""MSG for Variation: pull the embeddings of all gland sub-regions to one alignment anchor.

Inputs: pixel embeddings ``E`` of shape ``(B, D, h, w)`` and the SPM proposal ``P`` resized (nearest)
to ``h x w`` with values 0 background, 1 gland border, 2 gland interior, 255 ignore.

For image ``b`` with border pixels ``B_b = {i : P_i = 1}``, gland pixels ``G_b = {i : P_i in {1, 2}}``
and background pixels ``N_b = {j : P_j = 0}``, with ``e_i`` the L2-normalised embeddings:

    a_b   = normalize( mean_{i in B_b} e_i )                      (alignment anchor; no gradient)
    L_V,b = mean_{i in G_b} (1 - cos(e_i, a_b)) + mean_{j in N_b} max(0, cos(e_j, a_b) - m)
    L_V   = lambda_V * mean over images with B_b non-empty of L_V,b

The second term (margin ``m``, default 0.5) keeps the background from collapsing onto the anchor.
An image without border pixels contributes nothing; an image without background pixels has no
second term. If no image of the batch has border pixels, ``L_V = 0`` (still part of the graph).
"""
from __future__ import annotations

import torch
from mmseg.registry import MODELS
from torch import nn
from torch.nn import functional as F

from SPM import BACKGROUND, BORDER, INTERIOR  # the proposal map encoding, defined once


def border_anchor(embeddings: torch.Tensor, proposal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image alignment anchor: the re-normalised mean border embedding, detached.

    Args:
        embeddings: ``(B, D, h, w)``.
        proposal: ``(B, h, w)`` integer map.

    Returns:
        ``(anchors (B, D), valid (B,) bool)``; ``valid`` is False for images without border pixels
        (their anchor is zero).
    """
    e = F.normalize(embeddings.detach().float(), dim=1)
    border = (proposal == BORDER).float()
    counts = border.sum((1, 2))
    sums = torch.einsum("bdhw,bhw->bd", e, border)
    anchors = F.normalize(sums / counts.clamp(min=1)[:, None], dim=1)
    return anchors, counts > 0


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean of ``values (B, h, w)`` over ``mask``; 0 where the mask is empty."""
    mask = mask.float()
    return (values * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


def variation_loss(embeddings: torch.Tensor, proposal: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """``L_V`` without the weight (see module docstring). Returns a scalar."""
    anchors, valid = border_anchor(embeddings, proposal)
    if not valid.any():
        return embeddings.sum() * 0.0
    cos = torch.einsum("bdhw,bd->bhw", F.normalize(embeddings.float(), dim=1), anchors)
    gland = (proposal == BORDER) | (proposal == INTERIOR)
    pull = masked_mean(1.0 - cos, gland)
    push = masked_mean(F.relu(cos - margin), proposal == BACKGROUND)
    return (pull + push)[valid].mean()


@MODELS.register_module()
class MSGVariationLoss(nn.Module):
    """``lambda_V * L_V`` (``loss_weight`` = lambda_V). Call with ``(embeddings, proposal)``."""

    def __init__(self, margin: float = 0.5, loss_weight: float = 1.0, loss_name: str = "loss_variation") -> None:
        super().__init__()
        self.margin = margin
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, embeddings: torch.Tensor, proposal: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * variation_loss(embeddings, proposal, self.margin)

    @property
    def loss_name(self) -> str:
        return self._loss_name
