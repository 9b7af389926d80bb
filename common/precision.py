"""Whether bf16 pays on a device, and the one switch that overrides the choice.

bf16 pays only where the hardware computes it natively *and* faster than fp32. Native is not enough on
a CPU: AVX512-BF16 without AMX gives one bf16 dot-product instruction twice the multiply-adds of an fp32
FMA, which makes bf16 convolutions about 2x faster than fp32 on AMD Zen 4, yet on an Intel Xeon of family
6 model 207 (AVX512-BF16 and AVX512-FP16, no AMX exposed) the same oneDNN bf16 kernels ran at half
fp32's speed (``bench/msg_step.py``: 1024^3 matrix product 0.53x, the MSG step 0.70x). So on a CPU with
native bf16 a short timed convolution (forward + backward, bf16 autocast vs fp32) decides, once per
machine, cached (:func:`common.hardware.timed_choice`); on CUDA native bf16 (Ampere on) is taken as
faster. Every fast path in the project (SPM's trainer, ``BF16OptimWrapper``, bf16 inference, the
baselines) asks :func:`bf16_supported` and otherwise runs in plain fp32.

``MSSG_BF16=0`` forces the fp32 fallback and ``MSSG_BF16=1`` forces bf16 (emulated where not native),
so that either path can be run and tested on any machine; unset (or empty), the hardware decides.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch.nn import functional as F

from common.hardware import timed_choice

BF16_ENV = "MSSG_BF16"


def bf16_override() -> bool | None:
    """The ``MSSG_BF16`` setting: ``True`` (``1``), ``False`` (``0``) or ``None`` (unset or empty).

    Raises:
        ValueError: for any other value, naming the variable.
    """
    value = os.environ.get(BF16_ENV, "").strip()
    if value == "":
        return None
    if value in ("0", "1"):
        return value == "1"
    raise ValueError(f"{BF16_ENV} must be 0 (fp32), 1 (bf16) or unset (detect), got {value!r}")


def bf16_native(device: torch.device) -> bool:
    """True where bf16 matmul/conv run natively on ``device`` (not emulated)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def _conv_step(bf16: bool, channels: int = 128, size: int = 48, batch: int = 2) -> Callable[[], None]:
    """One 3x3 convolution's forward and backward at a CSNet / PSP-head-like shape, in bf16 autocast
    or fp32 (about 4 GFLOP: tens of milliseconds on 2 cores). Its tensors are made on the first run, so
    that a cached choice costs nothing."""
    tensors: list[torch.Tensor] = []

    def run() -> None:
        if not tensors:
            generator = torch.Generator().manual_seed(0)
            tensors.append(torch.randn(batch, channels, size, size, generator=generator).requires_grad_(True))
            tensors.append((torch.randn(channels, channels, 3, 3, generator=generator) * 0.01).requires_grad_(True))
        x, w = tensors
        x.grad = w.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.conv2d(x, w, padding=1)
        y.float().sum().backward()

    return run


def bf16_faster(device: torch.device) -> bool:
    """True where bf16 is native on ``device`` and, on a CPU, measured faster than fp32 on it."""
    if not bf16_native(device):
        return False
    if device.type != "cpu":
        return True
    return timed_choice("bf16-vs-fp32-conv", {"bf16": _conv_step(True), "fp32": _conv_step(False)}) == "bf16"


def bf16_supported(device: torch.device) -> bool:
    """Whether the project's bf16 paths run on ``device``: the ``MSSG_BF16`` override, else
    :func:`bf16_faster`."""
    forced = bf16_override()
    return bf16_faster(device) if forced is None else forced
