"""Distributed launch on machines without CUDA (torchrun + Gloo).

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` even for the Gloo backend, wraps the model in
DDP with ``device_ids=[LOCAL_RANK]`` (a CUDA device), and keeps SyncBN (CUDA-only) when distributed.
:func:`prepare_launch` therefore, only for ``--launcher pytorch`` without CUDA: initialises the Gloo
process group itself (mmengine then skips its own ``init_dist``), asks for DDP with
``device_ids=None``, and turns SyncBN into BN in the model config. With CUDA nothing changes (NCCL,
SyncBN). Call :func:`finish_launch` at exit.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist


def _syncbn_to_bn(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for value in node.values():
            _syncbn_to_bn(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _syncbn_to_bn(value)
    return node


def prepare_launch(cfg: Any, launcher: str) -> bool:
    """Set up a CPU (Gloo) distributed run if needed. Returns True when it did."""
    if launcher != "pytorch" or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    cfg.model_wrapper_cfg = dict(
        type="MMDistributedDataParallel",
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=cfg.get("find_unused_parameters", False),
    )
    _syncbn_to_bn(cfg.model)
    cfg.env_cfg = {**cfg.get("env_cfg", {}), "dist_cfg": dict(backend="gloo")}
    return True


def finish_launch() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def launched(cfg: Any, launcher: str) -> Iterator[None]:
    """``with launched(cfg, args.launcher): Runner.from_cfg(cfg).train()`` -- prepare, then clean up."""
    cpu_dist = prepare_launch(cfg, launcher)
    try:
        yield
    finally:
        if cpu_dist:
            finish_launch()
