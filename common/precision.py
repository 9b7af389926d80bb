"""Where bf16 runs natively, and the one switch that overrides the detection.

bf16 pays only where the hardware computes it natively (CUDA from Ampere on, CPUs with AVX512-BF16 or
AMX); emulated bf16 is slower than fp32 and rounds differently, so every fast path in the project
(SPM's trainer, ``BF16OptimWrapper``, bf16 inference, the baselines) asks :func:`bf16_supported` and
otherwise runs in plain fp32.

``MSSG_BF16=0`` forces the fp32 fallback and ``MSSG_BF16=1`` forces bf16 (emulated where not native),
so that either path can be run and tested on any machine; unset (or empty), the hardware decides.
"""
from __future__ import annotations

import os

import torch

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


def bf16_supported(device: torch.device) -> bool:
    """Whether the project's bf16 paths run on ``device``: the ``MSSG_BF16`` override, else :func:`bf16_native`."""
    forced = bf16_override()
    return bf16_native(device) if forced is None else forced
