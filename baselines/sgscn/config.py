"""SGSCN hyper-parameters (shared by the loss and the trainer, so neither imports the other for them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SGSCNConfig:
    """Hyper-parameters; defaults are the original ``demo_final.py``'s (centre loss on, see :mod:`baselines.sgscn`)."""

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
