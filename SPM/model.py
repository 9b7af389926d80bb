"""CSNet: the small per-image convolutional network of Selective Proposal Mining."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CSNet(nn.Module):
    """Per-pixel embedding network trained from scratch on a single image.

    Layers, as in the original SPM code (note the ReLU *before* BatchNorm)::

        conv3x3(in -> C) -> ReLU -> BN
        (n_conv - 1) x [conv3x3(C -> C) -> ReLU -> BN]
        conv1x1(C -> C) -> BN

    Args:
        in_channels: channels of the input image (3 for BGR).
        n_channels: embedding width C (``--nChannel``, 128 in the paper).
        n_conv: number of 3x3 conv blocks (``--nConv``, 3 in the paper).

    Shape:
        input ``(B, in_channels, H, W)`` -> output ``(B, n_channels, H, W)``; the
        output is both the pixel embedding and the logits of the argmax pseudo-label.
    """

    def __init__(self, in_channels: int = 3, n_channels: int = 128, n_conv: int = 3) -> None:
        super().__init__()
        if n_conv < 1:
            raise ValueError(f"n_conv must be >= 1, got {n_conv}")
        self.conv1 = nn.Conv2d(in_channels, n_channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(n_channels)
        self.conv2 = nn.ModuleList(
            nn.Conv2d(n_channels, n_channels, kernel_size=3, padding=1) for _ in range(n_conv - 1)
        )
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(n_channels) for _ in range(n_conv - 1))
        self.conv3 = nn.Conv2d(n_channels, n_channels, kernel_size=1)
        self.bn3 = nn.BatchNorm2d(n_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(F.relu(self.conv1(x)))
        for conv, bn in zip(self.conv2, self.bn2, strict=True):
            x = bn(F.relu(conv(x)))
        return self.bn3(self.conv3(x))


def csnet_step_flops(height: int, width: int, in_channels: int = 3, n_channels: int = 128, n_conv: int = 3) -> int:
    """Multiply-add FLOPs (2 per MAC) of one CSNet training step on an ``height x width`` image, from the
    layer shapes: forward, the weight gradients (as many again) and the input gradients (as many again,
    except for the first layer, whose input needs none). BatchNorm, ReLU and the loss are left out: they
    are memory-bound and small in FLOPs."""
    pixels = height * width
    first = 2 * pixels * in_channels * n_channels * 9
    middle = (n_conv - 1) * 2 * pixels * n_channels * n_channels * 9
    last = 2 * pixels * n_channels * n_channels
    forward = first + middle + last
    return 3 * forward - first
