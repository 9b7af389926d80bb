"""Per-image SGSCN: a fresh CSNet optimised on one image with the SGSCN loss, its argmax labels."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from baselines.sgscn.config import SGSCNConfig
from baselines.sgscn.loss import count_labels, sgscn_loss, should_stop
from common.precision import bf16_supported
from SPM.model import CSNet


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
