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


class StackedCSNet(nn.Module):
    """``n`` independent CSNets evaluated as one network, for mining many images in one pass.

    Every convolution is grouped by network (``groups=n``) and every BatchNorm has ``n * C`` channels, so
    with a batch of one image per network stacked along the channels, network ``i`` sees only image ``i``
    and its BatchNorm statistics are those of image ``i`` alone: the same function as ``nets[i]`` on that
    image, with the same initial weights (copied from ``nets``). SGD updates each parameter element by
    element, so training on the *sum* of the per-image losses trains every network as if alone.

    Shape:
        input ``(1, n * in_channels, H, W)`` (image ``i`` in channels ``[i * in, (i + 1) * in)``) ->
        output ``(1, n * C, H, W)``; :meth:`split` views it as ``(n, C, H, W)``.
    """

    def __init__(self, nets: list[CSNet]) -> None:
        super().__init__()
        if not nets:
            raise ValueError("StackedCSNet needs at least one network")
        n = len(nets)
        first = nets[0]
        self.n_nets = n
        self.n_channels = first.conv1.out_channels
        self.conv1 = self._grouped(n, [net.conv1 for net in nets])
        self.bn1 = self._stacked_bn([net.bn1 for net in nets])
        self.conv2 = nn.ModuleList(self._grouped(n, [net.conv2[i] for net in nets]) for i in range(len(first.conv2)))
        self.bn2 = nn.ModuleList(self._stacked_bn([net.bn2[i] for net in nets]) for i in range(len(first.bn2)))
        self.conv3 = self._grouped(n, [net.conv3 for net in nets])
        self.bn3 = self._stacked_bn([net.bn3 for net in nets])

    @staticmethod
    def _grouped(n: int, convs: list[nn.Conv2d]) -> nn.Conv2d:
        c = convs[0]
        conv = nn.Conv2d(n * c.in_channels, n * c.out_channels, c.kernel_size, padding=c.padding, groups=n)
        with torch.no_grad():
            conv.weight.copy_(torch.cat([m.weight for m in convs]))
            conv.bias.copy_(torch.cat([m.bias for m in convs]))
        return conv

    @staticmethod
    def _stacked_bn(bns: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(sum(m.num_features for m in bns))
        with torch.no_grad():
            bn.weight.copy_(torch.cat([m.weight for m in bns]))
            bn.bias.copy_(torch.cat([m.bias for m in bns]))
        return bn

    forward = CSNet.forward

    def split(self, y: torch.Tensor) -> torch.Tensor:
        """``(1, n * C, H, W)`` output -> ``(n, C, H, W)``, network by network."""
        return y.view(self.n_nets, self.n_channels, *y.shape[2:])


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
