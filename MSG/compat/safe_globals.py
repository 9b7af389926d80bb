"""Keep torch's weights-only checkpoint loading, and allow-list what mmengine checkpoints hold.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which refuses arbitrary pickled
objects: the right default for users who load downloaded weights. mmengine's training checkpoints
also carry the message hub (``HistoryBuffer`` with NumPy arrays) and config metadata needed by
``--resume``. Instead of turning the protection off, :func:`allow_mmengine_checkpoints` registers
exactly those classes with ``torch.serialization.add_safe_globals``.
"""
from __future__ import annotations

import numpy as np
import torch


def _numpy_globals() -> list:
    reconstruct = getattr(np, "_core", np).multiarray._reconstruct
    dtype_classes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")]
    return [reconstruct, np.ndarray, np.dtype, *dtype_classes, np.float64, np.float32, np.int64, np.int32]


def mmengine_checkpoint_globals() -> list:
    from mmengine.config.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, ConfigDict, *_numpy_globals()]


def allow_mmengine_checkpoints() -> None:
    """Allow-list the classes found in mmengine checkpoints for weights-only loading."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
