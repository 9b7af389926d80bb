"""Keep torch's weights-only checkpoint loading, and allow-list what mmengine checkpoints hold.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which refuses arbitrary pickled
objects: the right default for users who load downloaded weights. mmengine's training checkpoints
also carry the message hub (``HistoryBuffer`` with NumPy arrays) and config metadata needed by
``--resume``. Instead of turning the protection off, :func:`allow_mmengine_checkpoints` registers
exactly those classes with ``torch.serialization.add_safe_globals``; :func:`check_checkpoint` turns a
file that cannot be loaded that way into one ``InputError`` line, never into advice to disable it.
"""
from __future__ import annotations

import os

import numpy as np
import torch


def _numpy_globals() -> list:
    multiarray = getattr(np, "_core", np).multiarray
    dtype_classes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


def mmengine_checkpoint_globals() -> list:
    """What mmengine 0.10 training checkpoints pickle besides tensors (found with
    ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a real checkpoint).

    Allowed, and why each is safe to construct from an untrusted file:

    * ``HistoryBuffer`` and ``ConfigDict``: plain data containers; the unpickler creates them with
      ``__new__`` and fills their ``__dict__``/items from the file, running no code of the file's.
    * NumPy ``_reconstruct``, ``scalar``, ``ndarray``, ``dtype`` and the dtype classes of float64/32,
      int64/32, bool and uint8: rebuild arrays and scalars from raw bytes (the same set NumPy's own
      safe loading needs); no object arrays (``dtype('O')`` is not allowed).
    * ``getattr``: ``HistoryBuffer`` pickles its statistics methods as ``getattr(buffer, 'min')`` etc.,
      so the file can call ``getattr(obj, name)`` with ``obj`` any object the unpickler built and
      ``name`` any string. The result is an attribute or bound method, for example
      ``ndarray.tofile`` or a dict's ``update``; the unpickler calls (REDUCE) only allow-listed
      callables, and a fetched attribute is not on the list, so the file can fetch such an attribute
      but never call it. The objects it can reach are those above, tensors and builtins
      (dict, list, str, ...).
    """
    from mmengine.config.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, ConfigDict, getattr, *_numpy_globals()]


def allow_mmengine_checkpoints() -> None:
    """Allow-list the classes found in mmengine checkpoints for weights-only loading."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def _reason(err: BaseException) -> str:
    """One line saying why loading failed, without torch's advice to turn weights-only loading off."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("Trying to load unsupported GLOBAL"):
            return f"holds objects outside the allow-list: {line.rstrip('.')}"
        if line.startswith("WeightsUnpickler error:"):
            detail = line.removeprefix("WeightsUnpickler error:").split(" was not an allowed global")[0].strip()
            return f"holds objects outside the allow-list: {detail}"
    first = lines[0] if lines else ""
    if "weights_only" in first or "Weights only load failed" in first:
        return f"{err.__class__.__name__}: not a weights-only PyTorch checkpoint"
    return f"{err.__class__.__name__}: {first}".rstrip(": ")


def check_checkpoint(path: str | os.PathLike) -> dict:
    """Load ``path`` weights-only (mmengine classes allowed) and return it.

    Raises:
        InputError: ``PATH: file not found`` or ``PATH: not a loadable checkpoint (REASON)``.
    """
    from common.io import InputError

    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    allow_mmengine_checkpoints()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load fails in many ways (UnpicklingError, KeyError, RuntimeError...)
        raise InputError(path, f"not a loadable checkpoint ({_reason(err)})") from None
    if not isinstance(ckpt, dict):
        raise InputError(path, f"not a loadable checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt
