"""The SGSCN objective (argmax CE + continuity + centre loss) and its early-stop rule; maths and the
differences from the original in :mod:`baselines.sgscn`."""
from __future__ import annotations

import numpy as np
import torch

from baselines.sgscn.config import SGSCNConfig
from SPM.train import FusedSPMLoss, argmax_ce, continuity_loss

CENTER_EPS = 1e-3


def normalised_coordinates(h: int, w: int, device: torch.device | str | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinates of the original: ``x_i = i / h * 2 - 1`` ``(h,)`` and
    ``y_j = j / w * 2 - 1`` ``(w,)``, computed in float64 and stored as float32 (as NumPy → float32 there)."""
    rows = torch.from_numpy((np.arange(h) / h * 2 - 1.0).astype(np.float32))
    cols = torch.from_numpy((np.arange(w) / w * 2 - 1.0).astype(np.float32))
    return rows.to(device), cols.to(device)


def center_loss(y: torch.Tensor, softmax: bool = False, eps: float = CENTER_EPS) -> torch.Tensor:
    """SGSCN's context-based consistency loss: the spatial variance of every channel's pixel mass.

    Args:
        y: CSNet output ``(C, H, W)`` or ``(B, C, H, W)``; computed in fp32 whatever its dtype.
        softmax: ``p_c = softmax over pixels of y_c`` (opt-in variant) instead of the original's
            ``p_c = (y_c + eps) / sum_pixels(y_c + eps)`` (which may be negative or unbounded).
        eps: the original's ``epsilon`` (1e-3).

    Returns:
        0-dim fp32 tensor: ``sum over maps c of sum_{i,j} p_c(i,j) ((x_i - x_c)^2 + (y_j - y_c)^2)`` with
        the non-detached centres ``x_c = sum p_c x``, ``y_c = sum p_c y`` (:func:`normalised_coordinates`);
        summed (not averaged) over channels, and over the batch.
    """
    if y.dim() == 3:
        y = y.unsqueeze(0)
    if y.dim() != 4:
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(y.shape)}")
    b, c, h, w = y.shape
    maps = y.float().reshape(b * c, h * w)
    if softmax:
        p = maps.softmax(1)
    else:
        q = maps + eps
        p = q / q.sum(1, keepdim=True)
    p = p.view(b * c, h, w)
    rows, cols = normalised_coordinates(h, w, y.device)
    p_rows, p_cols = p.sum(2), p.sum(1)  # (n, h), (n, w): marginals over columns / rows
    x_c = p_rows @ rows
    y_c = p_cols @ cols
    var = (p_rows * (rows - x_c[:, None]).square()).sum(1) + (p_cols * (cols - y_c[:, None]).square()).sum(1)
    return var.sum()


def sgscn_loss(y: torch.Tensor, cfg: SGSCNConfig, fused: bool = False) -> torch.Tensor:
    """The per-step SGSCN objective on CSNet output ``y`` ``(1, C, H, W)`` (:mod:`baselines.sgscn`), fp32 0-dim.

    ``fused`` computes CE + continuity with :class:`SPM.train.FusedSPMLoss` (same value and gradient)."""
    if fused:
        loss = FusedSPMLoss.apply(y, cfg.stepsize_ce, cfg.stepsize_con)
    else:
        loss = cfg.stepsize_ce * argmax_ce(y) + cfg.stepsize_con * continuity_loss(y)
    if cfg.center:
        loss = loss + center_loss(y, cfg.center_softmax)
    return loss


def count_labels(y: torch.Tensor) -> int:
    """Number of distinct argmax-over-channels labels of ``(1, C, H, W)`` output (the original's ``nLabels``)."""
    return int(torch.bincount(y.argmax(1).flatten(), minlength=y.shape[1]).count_nonzero())


def should_stop(n_labels: int, min_labels: int) -> bool:
    """The original's early stop, checked after the optimiser step: ``nLabels <= minLabels``."""
    return n_labels <= min_labels
