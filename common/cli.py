"""Small helpers shared by the command-line tools: argument ranges and clean termination.

Exit codes, for every tool: 0 all inputs done; 1 some inputs failed (each reported on one line, the
rest done); 2 usage error or unusable input (nothing done).
"""
from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path

import torch

from common.io import InputError


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse ``type`` for an integer ``>= minimum`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_float(text: str) -> float:
    """argparse type: a float > 0 (scale ratios, learning rates, width multipliers)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def load_config(path: str, options: dict | None = None):
    """The mmengine ``Config`` at ``path`` with ``--cfg-options`` merged in; ``InputError`` if it is missing."""
    from mmengine.config import Config

    if not Path(path).is_file():
        raise InputError(path, "config file not found")
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` so that ``finally``/``except`` blocks run: an interrupted
    atomic write then removes its temporary file instead of leaving it behind."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA if available), ``cpu``, ``cuda`` or ``cuda:N`` as a device; ``cuda`` picks the
    rank's GPU. Raises ``InputError`` for an unknown name or an absent GPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise InputError(spec, "unknown device (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise InputError(spec, "unsupported device (use auto, cpu, cuda or cuda:N)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(spec, "CUDA requested but torch.cuda.is_available() is False")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device
