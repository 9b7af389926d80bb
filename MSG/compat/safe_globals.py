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
    multiarray = getattr(np, "_core", np).multiarray
    dtype_classes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


def mmengine_checkpoint_globals() -> list:
    """What mmengine 0.10 training checkpoints pickle besides tensors (found with
    ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a real checkpoint).

    ``getattr``: ``HistoryBuffer`` pickles its statistics methods as ``getattr(buffer, 'min')`` etc.
    The weights-only unpickler still refuses to *call* anything that is not allow-listed, so
    ``getattr`` can only fetch attributes of objects that were themselves allowed.
    """
    from mmengine.config.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, ConfigDict, getattr, *_numpy_globals()]


def allow_mmengine_checkpoints() -> None:
    """Allow-list the classes found in mmengine checkpoints for weights-only loading."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
