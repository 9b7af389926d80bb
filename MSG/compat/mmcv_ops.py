"""A pure-PyTorch stand-in for ``mmcv.ops`` when mmcv's compiled ops are absent.

mmsegmentation 1.2.2 imports ``mmcv.ops`` at import time (``point_sample`` in
``mmseg.models.utils``, ``sigmoid_focal_loss`` in the focal loss) although PSPNet and MSG need
no compiled op. ``mmcv-lite`` ships the Python files of ``mmcv.ops`` but not ``mmcv._ext``, so
that import fails. :func:`install` registers, *only when* ``mmcv._ext`` cannot be found, a
module offering:

* ``point_sample`` -- the same formula as mmcv's (``F.grid_sample`` on points given in
  ``[0, 1]`` coordinates, mapped to ``[-1, 1]``), pure PyTorch;
* every other name -- a placeholder that raises :class:`MissingCompiledOpError` naming the
  op and how to get the real ops, the moment it is called or instantiated.

With full mmcv (``MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0`` after torch
is installed) nothing is replaced and the real ops are used.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

import torch
from torch.nn import functional as F

INSTALL_HINT = (
    "install full mmcv with compiled ops: "
    "MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0 (torch installed first)"
)


class MissingCompiledOpError(RuntimeError):
    """An mmcv op that needs ``mmcv._ext`` was used while only the stand-in is installed."""


def point_sample(input: torch.Tensor, points: torch.Tensor, align_corners: bool = False, **kwargs: Any) -> torch.Tensor:
    """Sample ``input`` at ``points`` given in normalised ``[0, 1] x [0, 1]`` (x, y) coordinates.

    Args:
        input: ``(N, C, H, W)`` feature map.
        points: ``(N, P, 2)`` or ``(N, Hg, Wg, 2)``.
        align_corners: as in :func:`torch.nn.functional.grid_sample`.

    Returns:
        ``(N, C, P)`` or ``(N, C, Hg, Wg)``.
    """
    squeeze = points.dim() == 3
    if squeeze:
        points = points.unsqueeze(2)
    out = F.grid_sample(input, 2.0 * points - 1.0, align_corners=align_corners, **kwargs)
    return out.squeeze(3) if squeeze else out


def _placeholder(name: str) -> Any:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise MissingCompiledOpError(
            f"mmcv.ops.{name} needs mmcv's compiled ops (mmcv._ext is missing); {INSTALL_HINT}"
        )

    # A class, so that both calling and subclassing/instantiating fail with the same message.
    return type(name, (), {"__new__": staticmethod(lambda cls, *a, **k: fail()), "__call__": fail,
                           "__doc__": f"Stand-in for mmcv.ops.{name}: raises MissingCompiledOpError."})


def compiled_ops_available() -> bool:
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except (ImportError, ValueError):
        return False


def build_standin() -> types.ModuleType:
    module = types.ModuleType("mmcv.ops", __doc__)
    module.point_sample = point_sample
    module.MSSG_STANDIN = True

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _placeholder(name)
        setattr(module, name, value)
        return value

    module.__getattr__ = __getattr__
    return module


def install() -> bool:
    """Register the stand-in as ``mmcv.ops`` if compiled ops are absent. Returns True if installed."""
    if compiled_ops_available():
        return False
    current = sys.modules.get("mmcv.ops")
    if current is not None and not getattr(current, "MSSG_STANDIN", False) and hasattr(current, "nms"):
        return False  # a working mmcv.ops is already imported
    import mmcv

    standin = current if getattr(current, "MSSG_STANDIN", False) else build_standin()
    sys.modules["mmcv.ops"] = standin
    mmcv.ops = standin
    return True
