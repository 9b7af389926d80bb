"""Per-image optimisation of CSNet (step 1 of SPM).

Loss per step, on the output ``y`` of shape ``(1, C, H, W)`` with target ``t = argmax_c y``:

    L = stepsize_ce * CE(y, t) + stepsize_ss * (mean|y[:, :, 1:, :] - y[:, :, :-1, :]|
                                              + mean|y[:, :, :, 1:] - y[:, :, :, :-1]|)

Two paths compute the same method:

* **exact** (``--exact``): fp32, eager, ``F.cross_entropy``; the reference.
* **fast** (default): the loss as :class:`FusedSPMLoss` (its analytic gradient is computed in the
  same pass as its value), and the fastest form of the rest that this machine has
  (:func:`fast_path_settings`): on CUDA and on CPUs where bf16 is native and measured faster than
  fp32 (:func:`common.precision.bf16_supported`), bf16 autocast, channels-last memory and forward +
  loss ``torch.compile``-d (its backward is compiled with it; eager if compiling fails); elsewhere
  fp32 eager -- inductor's fp32 CPU
  kernels of this step were slower than eager on AVX2 and corrupted the heap on an AVX-512 CPU --
  in the memory layout that a short probe on this machine finds faster (measured once, cached).
  The loss itself is computed in fp32 on both paths.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from common.hardware import timed_choice
from common.precision import bf16_supported
from SPM.model import CSNet, StackedCSNet


@dataclass
class SPMTrainConfig:
    n_channels: int = 128
    n_conv: int = 3
    max_iter: int = 50
    lr: float = 0.01
    momentum: float = 0.9
    stepsize_ce: float = 1.0
    stepsize_ss: float = 5.0


def continuity_loss(y: torch.Tensor) -> torch.Tensor:
    """Spatial L1 continuity of ``(B, C, H, W)`` embeddings: mean |dy| + mean |dx| (fp32 result)."""
    dy = (y[:, :, 1:, :] - y[:, :, :-1, :]).abs().float().mean()
    dx = (y[:, :, :, 1:] - y[:, :, :, :-1]).abs().float().mean()
    return dy + dx


def argmax_ce(y: torch.Tensor) -> torch.Tensor:
    """Cross entropy of ``(B, C, H, W)`` logits against their own argmax (an integer target,
    so no gradient flows through it), computed in fp32."""
    y = y.float()
    return F.cross_entropy(y, y.argmax(1))


def spm_loss(y: torch.Tensor, cfg: SPMTrainConfig) -> torch.Tensor:
    """The per-step SPM objective on ``(1, C, H, W)`` CSNet output (see module docstring)."""
    return cfg.stepsize_ce * argmax_ce(y) + cfg.stepsize_ss * continuity_loss(y)


class FusedSPMLoss(torch.autograd.Function):
    """:func:`spm_loss` with its gradient written out, so that value and gradient come from one
    pass over ``y`` (the loss is memory-bound: autograd's version reads the 128-channel output
    several more times in the backward; fused, the compiled step is ~10% faster on CPU).

    With ``t = argmax_c y`` (first maximum, as ``argmax``), ``y_t = max_c y``, so
    ``CE(y, t) = mean_pixels log sum_c exp(y_c - max_c y)`` and its gradient is
    ``(softmax(y) - onehot(t)) / pixels``. For the continuity term ``mean|d|`` over the
    differences ``d`` of neighbours, the gradient is ``sign(d) / d.numel()`` scattered with
    ``+`` to the later and ``-`` to the earlier pixel of each pair (``sign(0) = 0``, as the
    gradient of ``abs``). Equal to autograd on :func:`spm_loss` (a test checks it).

    Use as ``FusedSPMLoss.apply(y, stepsize_ce, stepsize_ss)`` on ``(B, C, H, W)`` ``y``.
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, stepsize_ce: float, stepsize_ss: float) -> torch.Tensor:
        yf = y.float()
        pixels = y.shape[0] * y.shape[2] * y.shape[3]
        shifted = yf - yf.amax(1, keepdim=True)
        exp = shifted.exp()
        sum_exp = exp.sum(1, keepdim=True)
        ce = sum_exp.log().mean()
        channel = torch.arange(y.shape[1], device=y.device).view(1, -1, 1, 1)
        onehot = (channel == yf.argmax(1, keepdim=True)).float()
        grad = (exp / sum_exp - onehot) * (stepsize_ce / pixels)

        d_vertical = yf[:, :, 1:, :] - yf[:, :, :-1, :]
        d_horizontal = yf[:, :, :, 1:] - yf[:, :, :, :-1]
        s_vertical = d_vertical.sign() * (stepsize_ss / d_vertical.numel())
        s_horizontal = d_horizontal.sign() * (stepsize_ss / d_horizontal.numel())
        grad = (grad + F.pad(s_vertical, (0, 0, 1, 0)) - F.pad(s_vertical, (0, 0, 0, 1))
                + F.pad(s_horizontal, (1, 0)) - F.pad(s_horizontal, (0, 1)))
        ctx.save_for_backward(grad.to(y.dtype))
        return stepsize_ce * ce + stepsize_ss * (d_vertical.abs().mean() + d_horizontal.abs().mean())

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None


def fast_path_settings(device: torch.device, cfg: SPMTrainConfig) -> tuple[bool, bool, bool]:
    """``(bf16, channels_last, compile)`` of the fast path on ``device``.

    Measured on 2 cores, CSNet step at 144 x 192 (``bench/spm_speed.py --paths``): AMD Zen 4 with
    AVX512-BF16, bf16: compiled channels-last 0.36 s, compiled NCHW 0.38 s, eager channels-last 0.44 s;
    the same CPU limited to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``), fp32: eager NCHW 0.84 s, compiled NCHW
    1.41 s, compiled channels-last 1.62 s, eager channels-last 1.70 s. The layout of the fp32 eager step
    differs most between CPUs (NCHW on AVX2, channels-last on an Intel Xeon with AVX-512 where bf16 is
    native but slower than fp32), so it is measured here once (:func:`common.hardware.timed_choice`).
    """
    bf16 = bf16_supported(device)
    if device.type == "cuda" or bf16:
        return bf16, True, True

    def steps(channels_last: bool) -> Callable[[], None]:
        trainer = CSNetTrainer(dataclasses.replace(cfg, max_iter=2), device, compile=False)
        trainer.use_bf16, trainer.channels_last = False, channels_last
        # made inside the timed run: an image made in the caller's inference_mode could not be trained on
        return lambda: trainer.fit(torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0)), seed=0)

    layout = timed_choice(f"csnet-fp32-layout-{cfg.n_channels}x{cfg.n_conv}",
                          {"channels_last": steps(True), "nchw": steps(False)})
    return False, layout == "channels_last", False


class CSNetTrainer:
    """Trains a fresh CSNet on one image and returns its final pixel embeddings.

    One trainer can serve many images; the compiled step is reused (recompiled only for
    new image sizes).

    Args:
        cfg: hyper-parameters of the original SPM.
        device: where to run.
        exact: reference path (fp32, eager, plain CE); otherwise the fast path.
        compile: ``torch.compile`` the fast step (ignored when ``exact``); None: where the fast path
            compiles on this machine (:func:`fast_path_settings`), False: never.
    """

    def __init__(
        self, cfg: SPMTrainConfig, device: torch.device, exact: bool = False, compile: bool | None = None
    ) -> None:
        self.cfg = cfg
        self.device = device
        self.exact = exact
        if exact:
            self.use_bf16, self.channels_last, self.compile = False, False, False
        elif compile is False:
            # no compiler wanted: the layout still follows the precision
            self.use_bf16 = bf16_supported(device)
            self.channels_last = self.use_bf16 or device.type == "cuda"
            self.compile = False
        else:
            self.use_bf16, self.channels_last, self.compile = fast_path_settings(device, cfg)
        self._compiled: Callable | None = None

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)

    def _forward_loss(self, model: CSNet | StackedCSNet, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            y = model(x)
        n = 1
        if isinstance(model, StackedCSNet):
            # the batch loss is the mean over the images; each network's gradient must be its own
            # image's, so the sum of the per-image losses is optimised
            y, n = model.split(y), model.n_nets
        if self.exact:
            return n * spm_loss(y, self.cfg)
        return n * FusedSPMLoss.apply(y, self.cfg.stepsize_ce, self.cfg.stepsize_ss)

    def _get_forward_loss(self) -> Callable:
        # Only forward + loss are compiled (their backward comes with them through AOTAutograd);
        # the optimizer step stays eager: compiling it inside the same graph produced NaNs here.
        if not self.compile:
            return self._forward_loss
        if self._compiled is None:
            self._compiled = torch.compile(self._forward_loss, dynamic=False)
        return self._compiled

    def fit(
        self,
        image: torch.Tensor,
        seed: int,
        on_step: Callable[[int, float], None] | None = None,
    ) -> torch.Tensor:
        """Optimise a fresh CSNet on ``image`` and return the final embeddings.

        Args:
            image: ``(1, 3, H, W)`` float in [0, 1] (BGR channel order, as the original).
            seed: seeds the network initialisation.
            on_step: called with (step index, loss) after every step.

        Returns:
            ``(H * W, C)`` embeddings (bf16 or fp32) on ``self.device``, pixel order row-major.
        """
        torch.manual_seed(seed)
        model = CSNet(image.shape[1], self.cfg.n_channels, self.cfg.n_conv).to(self.device)
        return self._optimise(model, image.to(self.device), on_step)[0]

    def fit_many(
        self,
        images: list[torch.Tensor],
        seeds: list[int],
        on_step: Callable[[int, float], None] | None = None,
    ) -> list[torch.Tensor]:
        """:meth:`fit` for several images of one size in one pass (:class:`SPM.model.StackedCSNet`): each
        image gets its own fresh CSNet, initialised from its own seed, its own optimiser state and
        BatchNorm statistics, as if mined alone. Returns one ``(H * W, C)`` embedding per image."""
        if len({tuple(im.shape) for im in images}) != 1:
            raise ValueError("fit_many needs images of one size; group them by size")
        nets = []
        for seed in seeds:
            torch.manual_seed(seed)
            nets.append(CSNet(images[0].shape[1], self.cfg.n_channels, self.cfg.n_conv))
        model = StackedCSNet(nets).to(self.device)
        x = torch.cat([im.to(self.device) for im in images], dim=1)
        return self._optimise(model, x, on_step)

    def _optimise(self, model: CSNet | StackedCSNet, x: torch.Tensor,
                  on_step: Callable[[int, float], None] | None) -> list[torch.Tensor]:
        # The input's layout decides the layout of every activation: an image tensor made from an
        # HWC array is channels-last in memory, and NCHW weights on it ran the fp32 step ~2x slower.
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        model = model.to(memory_format=memory_format)
        x = x.contiguous(memory_format=memory_format)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=self.cfg.lr, momentum=self.cfg.momentum)
        forward_loss = self._get_forward_loss()
        for it in range(self.cfg.max_iter):
            optimizer.zero_grad(set_to_none=True)
            try:
                loss = forward_loss(model, x)
            except Exception as err:
                if forward_loss is self._forward_loss:
                    raise
                warnings.warn(f"torch.compile failed ({err.__class__.__name__}); running eager", stacklevel=2)
                self.compile = False
                forward_loss = self._forward_loss
                loss = forward_loss(model, x)
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(it, float(loss.detach()))
        # The original ran this last forward in train mode too (batch statistics).
        with torch.no_grad(), self._autocast():
            y = model(x)
        if isinstance(model, StackedCSNet):
            y = model.split(y)
        return [e.permute(1, 2, 0).reshape(-1, y.shape[1]) for e in y]
