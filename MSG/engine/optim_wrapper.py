"""bf16 mixed-precision training through mmengine's ``AmpOptimWrapper``, on CPU as well as CUDA.

mmengine's ``AmpOptimWrapper(dtype="bfloat16")`` already autocasts the forward pass to the requested
dtype on whatever device ``get_device()`` names (``torch.autocast("cpu", bfloat16)`` on a CPU). Two
things stop it from training in bf16 on a CPU, and this subclass changes only those:

1. its ``__init__`` asserts that a GPU/NPU/MLU/MUSA is present, so it refuses to start on a CPU;
2. it always builds a ``torch.cuda.amp.GradScaler``. bf16 has fp32's exponent range, so gradients do
   not underflow and loss scaling is not needed (PyTorch's AMP recipe scales only for fp16); the
   scaler is built disabled, which makes ``scale`` the identity and ``step`` a plain optimizer step.

Where bf16 does not pay — emulated (CPUs without AVX512-BF16/AMX, CUDA before Ampere) or native but
measured slower than fp32 on this CPU — the wrapper trains in plain fp32 (autocast off: exactly
``OptimWrapper``'s numbers) and logs one warning. ``MSSG_BF16=0|1`` overrides the choice
(:mod:`common.precision`).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.device import get_device
from mmengine.dist import broadcast_object_list, get_rank, is_distributed
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn

from common.precision import bf16_supported


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` with ``dtype=bfloat16`` that also runs on CPUs, without loss scaling.

    Args:
        bf16: autocast to bf16 or not; None (default): where it pays on this device
            (:func:`common.precision.bf16_supported`). Benchmarks set it to time bf16 where it is slower.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, bf16: bool | None = None, **kwargs) -> None:
        OptimWrapper.__init__(self, **kwargs)  # skips AmpOptimWrapper's GPU-only assertion
        self._scale_update_param = None
        self.cast_dtype = torch.bfloat16
        self.device_type = get_device()
        self.bf16 = self._agreed_bf16() if bf16 is None else bf16
        # A disabled scaler keeps AmpOptimWrapper's backward/step/state_dict code paths valid.
        self.loss_scaler = torch.amp.GradScaler(self.device_type if self.device_type == "cuda" else "cpu",
                                                enabled=False)
        if not self.bf16:
            print_log(f"BF16OptimWrapper: bf16 does not pay on this {self.device_type} (emulated, or measured "
                      "slower than fp32); training in fp32",
                      logger="current", level=30)

    def _agreed_bf16(self) -> bool:
        """Whether bf16 pays here, decided once for all ranks of a distributed run by rank 0.

        On a CPU the choice is timed in each process, and two ranks measuring at once can come out
        differently; ranks in different precisions would then exchange SyncBN statistics of different
        dtypes and abort.
        """
        def pays() -> bool:
            return self.device_type in ("cpu", "cuda") and bf16_supported(torch.device(self.device_type))

        if not is_distributed():
            return pays()
        choice = [pays() if get_rank() == 0 else None]
        broadcast_object_list(choice, src=0)
        return bool(choice[0])

    @contextmanager
    def optim_context(self, model: nn.Module):
        with OptimWrapper.optim_context(self, model), torch.autocast(
                self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
            yield
