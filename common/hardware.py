"""What this machine can do, measured in the same run as a benchmark: the practical ceiling a hot loop
is compared with."""
from __future__ import annotations

import time

import torch
from torch.nn import functional as F


def conv_ceiling_gflops(channels: int, height: int, width: int, batch: int = 1, kernel: int = 3,
                        bf16: bool = False, channels_last: bool = False, device: str = "cpu",
                        repeats: int = 5, out_channels: int | None = None) -> float:
    """GFLOP/s of one ``channels -> out_channels`` (default: ``channels``) convolution's forward,
    weight-gradient and input-gradient passes at this shape, precision and memory layout (the best of
    ``repeats`` after one warm-up)."""
    out_channels = out_channels or channels
    x = torch.randn(batch, channels, height, width, device=device)
    w = torch.randn(out_channels, channels, kernel, kernel, device=device) * 0.01
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w.requires_grad_(True)
    flops = 3 * 2 * batch * height * width * channels * out_channels * kernel * kernel
    best = float("inf")
    for i in range(repeats + 1):
        x.grad = w.grad = None
        start = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            y = F.conv2d(x, w, padding=kernel // 2)
        y.float().sum().backward()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        if i:
            best = min(best, time.perf_counter() - start)
    return flops / best / 1e9
