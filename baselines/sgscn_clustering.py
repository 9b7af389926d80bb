"""SGSCN: Spatial Guided Self-supervised Clustering Network (Ahn, Feng, Kim, MICCAI 2021), re-implemented.

Per image, a fresh CSNet (:class:`SPM.model.CSNet`, the same architecture as the original's: conv3x3 →
ReLU → BN, ``nConv - 1`` × the same, conv1x1 → BN; 100 channels, ``nConv`` 2) is optimised with SGD
(lr 0.1, momentum 0.9) for at most ``maxIter`` (50) steps; the pixel clusters are the argmax channels of
its output. Checked against the public code (``demo_final.py`` and ``src/center.py`` of
osmond332/Spatial_Guided_Self_Supervised_Clustering), on the output ``o`` of shape ``(C, H, W)``
(batch of one, BGR input ``cv2.imread / 255``, model in train mode throughout)::

    L = stepsize_ce · CE(o, argmax_c o)                             # mean over pixels; stepsize_ce = 1
      + stepsize_ss · (mean|o[:, 1:, :] - o[:, :-1, :]| + mean|o[:, :, 1:] - o[:, :, :-1]|)   # = 5
      + sum_c sum_{i,j} p_c(i, j) · ((x_i - x_c)^2 + (y_j - y_c)^2) # centre loss, weight 1, SUM over c

    p_c(i, j) = (o_c(i, j) + 1e-3) / sum_{i,j} (o_c(i, j) + 1e-3)   # not a softmax; BN outputs may be < 0
    x_i = i / H · 2 - 1  (row i),   y_j = j / W · 2 - 1  (column j)  # in [-1, 1 - 2/H], not symmetric
    x_c = sum_{i,j} p_c(i, j) x_i,  y_c = sum_{i,j} p_c(i, j) y_j    # not detached; the normaliser
                                                                      # sum(o_c + eps) is not detached either

(As ``sum p_c = 1``, the variance is stationary in its centre, so detaching ``x_c, y_c`` would not change
the gradient; the normaliser's gradient does matter.)

Step ``t``: forward, loss, ``n = #distinct argmax labels of this forward`` (counted *before* the step),
backward, ``optimizer.step()``, then stop if ``n <= minLabels`` (3): the step that met the rule is still
taken. The final labels are ``argmax_c`` of one more forward, still in **train** mode (BatchNorm uses the
batch statistics; the original never calls ``model.eval()``).

In train mode ``sum_{i,j} o_c = H·W·beta_c`` (beta: bn3's bias, 0 at init), so the normaliser of ``p_c`` is
``H·W·(beta_c + 1e-3)``: tiny, and zero if training drives ``beta_c`` to ``-1e-3``. The centre loss can then
be large, negative or non-finite; that is the original's behaviour and it is kept (a non-finite loss is
reported as a warning). ``center_softmax=True`` (``--center-softmax``) is an opt-in, well-posed variant:
``p_c = softmax over pixels of o_c``.

Differences from the original code, on purpose:

* The centre loss is **on** by default (the method of the paper); the original's ``demo_final.py`` needs
  ``--center`` for it (its default is off); ``--no-center`` gives that default.
* Values are the same, but computed once and vectorised: the original builds the centres (``get_centers``)
  and the variances (``get_variance``) in two Python loops over channels; here both come from the row and
  column marginals of ``p_c`` (``sum_{i,j} p (x_i - x_c)^2 = sum_i (sum_j p)(x_i - x_c)^2``), so only the
  floating-point summation order differs. The original's coordinate helper is CUDA-only; this runs anywhere.
* ``seed`` seeds CSNet's initialisation per image (the original was unseeded); the cluster colours are a
  fixed palette (the original drew ``np.random.randint`` colours).
* Fast path (default): bf16 autocast where the hardware runs it natively (CUDA, CPUs with
  AVX512-BF16/AMX) and channels-last memory, the loss in fp32 (CE + continuity as
  :class:`SPM.train.FusedSPMLoss`, equal to autograd); ``exact=True`` (``--exact``) is fp32 eager, as the
  original. The final forward runs under ``no_grad`` (same values).
* The original only writes a colour map per image. Turning clusters into a gland mask is this project's
  addition: :func:`gland_pseudo_mask` (label-free: the darkest cluster with more than ``min_pixels``
  pixels, the cue SPM uses for its border proposal) and the per-image majority-vote oracle
  :func:`evaluation.oracles.oracle_majority_labels` (uses the ground truth; evaluation only).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from common.precision import bf16_supported
from SPM.model import CSNet
from SPM.select import cluster_stats, select_border_cluster
from SPM.train import FusedSPMLoss, argmax_ce, continuity_loss

CENTER_EPS = 1e-3


@dataclass
class SGSCNConfig:
    """Hyper-parameters; defaults are the original ``demo_final.py``'s (centre loss on, see module doc)."""

    n_channels: int = 100
    n_conv: int = 2
    max_iter: int = 50
    min_labels: int = 3
    lr: float = 0.1
    momentum: float = 0.9
    stepsize_ce: float = 1.0
    stepsize_con: float = 5.0  # the original's --stepsize_ss
    center: bool = True
    center_softmax: bool = False


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
    """The per-step SGSCN objective on CSNet output ``y`` ``(1, C, H, W)`` (module docstring), fp32 0-dim.

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


@dataclass
class SGSCNResult:
    labels: np.ndarray  # (H, W) int64 argmax channel ids in [0, n_channels)
    iterations: int  # optimiser steps taken
    label_counts: list[int]  # distinct labels of each step's forward (before its step)
    loss: float  # loss of the last step
    warnings: list[str] = field(default_factory=list)


class SGSCNTrainer:
    """Trains a fresh CSNet per image with the SGSCN loss and returns its argmax labels.

    Args:
        cfg: hyper-parameters.
        device: where to run.
        exact: fp32 eager reference path; otherwise bf16 autocast where native, channels-last.
    """

    def __init__(self, cfg: SGSCNConfig, device: torch.device | str, exact: bool = False) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.exact = exact
        self.use_bf16 = (not exact) and bf16_supported(self.device)
        self.channels_last = not exact

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)

    def fit(
        self, image: torch.Tensor, seed: int = 0, on_step: Callable[[int, float, int], None] | None = None
    ) -> SGSCNResult:
        """Optimise a fresh CSNet on ``image`` ``(1, 3, H, W)`` float in [0, 1] (BGR, as the original).

        ``on_step(step, loss, n_labels)`` is called after every step."""
        cfg = self.cfg
        torch.manual_seed(seed)
        model = CSNet(image.shape[1], cfg.n_channels, cfg.n_conv).to(self.device)
        x = image.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        counts: list[int] = []
        notes: list[str] = []
        loss_value = math.nan
        for it in range(cfg.max_iter):
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                y = model(x)
            loss = sgscn_loss(y, cfg, fused=not self.exact)
            n_labels = count_labels(y)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            counts.append(n_labels)
            if not math.isfinite(loss_value) and not notes:
                notes.append(f"loss became non-finite ({loss_value}) at step {it + 1}")
            if on_step is not None:
                on_step(it, loss_value, n_labels)
            if should_stop(n_labels, cfg.min_labels):
                break
        with torch.no_grad(), self._autocast():  # still train mode (batch statistics), as the original
            y = model(x)
        labels = y[0].argmax(0).cpu().numpy().astype(np.int64)
        return SGSCNResult(labels, len(counts), counts, loss_value, notes)


def cluster_image(
    image: torch.Tensor, cfg: SGSCNConfig, device: torch.device | str = "cpu", seed: int = 0, exact: bool = False
) -> np.ndarray:
    """SGSCN clusters of one image.

    Args:
        image: ``(1, 3, H, W)`` float in [0, 1], BGR (``SPM.pipeline.image_to_tensor``).

    Returns:
        ``(H, W)`` int64 cluster (argmax channel) ids in ``[0, cfg.n_channels)``.
    """
    return SGSCNTrainer(cfg, device, exact=exact).fit(image, seed=seed).labels


@dataclass
class GlandSelection:
    cluster: int  # selected cluster id
    mean_gray: float  # its mean gray intensity
    pixels: int  # its size
    warning: str | None  # set when no cluster had more than min_pixels pixels


def select_gland_cluster(gray: np.ndarray, labels: np.ndarray, min_pixels: int = 10000) -> GlandSelection:
    """The label-free rule: the darkest cluster (lowest mean gray) among those with more than
    ``min_pixels`` pixels (:func:`SPM.select.select_border_cluster`); if none is that large, the largest
    cluster, with a warning.

    Args:
        gray: ``(H, W)`` grayscale image (OpenCV BGR→gray).
        labels: ``(H, W)`` non-negative integer cluster ids.
    """
    if gray.shape != labels.shape:
        raise ValueError(f"gray {gray.shape} and labels {labels.shape} differ in shape")
    sizes, means = cluster_stats(gray, labels, int(labels.max()) + 1)
    cluster, warning = select_border_cluster(sizes, means, min_pixels)
    image_gray = float(gray.mean())
    if np.unique(labels).size == 1:
        collapsed = "the clustering collapsed to one cluster (check --lr): the mask is the whole image"
        warning = f"{warning}; {collapsed}" if warning else collapsed
    elif means[cluster] > image_gray:  # glands (dark nuclei) are darker than the image on average
        bright = (f"the selected cluster (mean gray {means[cluster]:.1f}) is brighter than the image "
                  f"({image_gray:.1f}): it is likely stroma or background, not glands")
        warning = f"{warning}; {bright}" if warning else bright
    return GlandSelection(cluster, float(means[cluster]), int(sizes[cluster]), warning)


def gland_pseudo_mask(gray: np.ndarray, labels: np.ndarray, min_pixels: int = 10000) -> np.ndarray:
    """``(H, W)`` bool gland mask: the pixels of :func:`select_gland_cluster`'s cluster (no post-processing).
    The fallback (no cluster larger than ``min_pixels``) is reported with :func:`warnings.warn`."""
    sel = select_gland_cluster(gray, labels, min_pixels)
    if sel.warning:
        warnings.warn(sel.warning, stacklevel=2)
    return labels == sel.cluster
