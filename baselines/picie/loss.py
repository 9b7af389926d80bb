"""The PiCIE loss: within-view and cross-view cross-entropies against frozen centroids."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.picie.kmeans import cluster_logits


def picie_loss(feat1: torch.Tensor, feat2: torch.Tensor, centroids1: torch.Tensor, centroids2: torch.Tensor,
               labels1: torch.Tensor, labels2: torch.Tensor, weight1: torch.Tensor | None = None,
               weight2: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The PiCIE loss on one batch.

    Args:
        feat1, feat2: ``(B, D, h, w)`` normalised features of view 1 / view 2, both in the frame of the
            geometric transform (view 1: transformed image; view 2: transformed feature map).
        centroids1, centroids2: ``(k, D)`` (frozen) centroids of view 1 / view 2.
        labels1, labels2: ``(B, h, w)`` int64 labels of view 1 (from ``centroids1``) / view 2.
        weight1, weight2: ``(k,)`` CE class weights coupled with ``labels1`` / ``labels2`` (or None).

    Returns:
        ``{"loss11", "loss22", "loss12", "loss21", "within", "across", "total"}``; ``lossAB`` is the CE of
        view A's features against view B's centroids and labels; ``total = (within + across) / 2``.
    """
    def ce(feat: torch.Tensor, cent: torch.Tensor, lab: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        return F.cross_entropy(cluster_logits(feat, cent), lab, weight=w)

    out = {
        "loss11": ce(feat1, centroids1, labels1, weight1),
        "loss22": ce(feat2, centroids2, labels2, weight2),
        "loss12": ce(feat1, centroids2, labels2, weight2),
        "loss21": ce(feat2, centroids1, labels1, weight1),
    }
    out["within"] = (out["loss11"] + out["loss22"]) / 2
    out["across"] = (out["loss12"] + out["loss21"]) / 2
    out["total"] = (out["within"] + out["across"]) / 2
    return out
