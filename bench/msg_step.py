"""MSG training-step benchmark of the CPU-scale config, in one process:

* MSG overhead: seconds per step with MSG (Variation + Omission, Omission active) vs the same
  config with plain CE on the proposals (target <= 10%);
* bf16 speed-up: the MSG step in fp32 (``OptimWrapper``) vs bf16 autocast (``BF16OptimWrapper``,
  forced on here), with and without channels-last; fp32 with channels-last too, since the CPU configs
  train in fp32 wherever bf16 is emulated or measured slower (``common.precision.bf16_supported``);
* the hardware's own bf16 ceiling beside it: which bf16 instructions the CPU has (AMX tiles or only
  AVX512-BF16 dot products) and the bf16 vs fp32 throughput of a plain 1024^3 matrix product measured in
  the same run. A convolution-bound step cannot gain much more than that ratio: on CPUs with AVX512-BF16
  but no AMX (AMD Zen 4, Intel Cooper Lake) one bf16 dot-product instruction does twice the multiply-adds
  of an fp32 FMA, so the matrix-product ratio is about 2.5-2.8x and oneDNN's bf16 convolutions of this
  net gain 1.8-2.4x each (fwd, bwd-data, bwd-weights measured apart); AMX raises both several-fold.

    python bench/msg_step.py [--config configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py]
                             [--steps 6 --warmup 2 --batch 8 --size 256] [--device cuda]

On CUDA it also prints each run's peak GPU memory; on any device, the loss of every step of MSG fp32
beside MSG bf16 (same initial weights, same batch), so that one can see bf16 track fp32.

All models see the same random batch (images and 0/1/2 proposal maps); steps alternate between
the models so that machine load drifts affect all alike. Each step is what the runner does:
data preprocessing, forward and losses inside the wrapper's ``optim_context``, backward, SGD step.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import MSG  # noqa: F401  (the mmcv.ops stand-in and the MSG registrations, before mmseg loads)

# isort: split
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from common.hardware import add_allocator_option, conv_ceiling_gflops, cpu_description, keep_freed_memory
from common.precision import bf16_native, bf16_override, bf16_supported

ROOT = Path(__file__).resolve().parents[1]


def build(cfg: Config, msg: bool, bf16: bool, channels_last: bool = False, device: str = "cpu",
          compile: bool = False):
    from mmengine.optim import OptimWrapper

    from MSG.engine.optim_wrapper import BF16OptimWrapper

    model_cfg = cfg.model.copy()
    model_cfg.channels_last = channels_last
    if not msg:
        model_cfg.decode_head = dict(model_cfg.decode_head, variation=None, omission=None)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(device).train()
    if compile:
        # the network's forward (and with it its backward); losses, MSG's grouping and the SGD step stay eager
        for name in ("backbone", "decode_head", "auxiliary_head"):
            setattr(model, name, torch.compile(getattr(model, name)))
    model.current_iter = 10**9  # Omission active
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    if not bf16:
        return model, OptimWrapper(optimizer=optimizer)
    # bf16 wherever it is native (or forced by MSSG_BF16), even where training would choose fp32 as faster
    forced = bf16_override()
    return model, BF16OptimWrapper(optimizer=optimizer,
                                   bf16=bf16_native(torch.device(device)) if forced is None else forced)


def gemm_bf16_ratio(device: str, n: int = 1024, reps: int = 7) -> float:
    """fp32 / bf16 time of an ``n x n`` matrix product, alternating, median of ``reps``."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
    pairs = {torch.float32: (a, b), torch.bfloat16: (a.bfloat16(), b.bfloat16())}
    times: dict[torch.dtype, list[float]] = {dt: [] for dt in pairs}
    for rep in range(reps + 1):
        for dt, (x, y) in pairs.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(4):
                x @ y
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if rep:  # the first round is a warm-up
                times[dt].append(time.perf_counter() - start)
    return statistics.median(times[torch.float32]) / statistics.median(times[torch.bfloat16])


def step_flops(model, wrapper, images: torch.Tensor, samples: list) -> int:
    """FLOPs of one training step (forward, losses, backward), counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        with wrapper.optim_context(model):
            data = model.data_preprocessor(dict(inputs=list(images.to(torch.uint8)), data_samples=samples), True)
            losses = model.loss(data["inputs"], data["data_samples"])
        sum(v for k, v in losses.items() if "loss" in k).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py"))
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu | cuda (the full-width config fits one GPU)")
    p.add_argument("--compile", action="store_true",
                   help="also time bf16 + channels-last with torch.compile (first step = warm-up, reported apart)")
    add_allocator_option(p)
    args = p.parse_args(argv)
    if not args.glibc_malloc:
        keep_freed_memory()
    cuda = args.device.startswith("cuda")
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=gen) * 255
    proposals = torch.zeros(args.batch, args.size, args.size, dtype=torch.long)
    s = args.size
    proposals[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 2
    proposals[:, s // 4 : s // 4 + s // 16, s // 4 : 3 * s // 4] = 1
    samples = [SegDataSample(gt_sem_seg=PixelData(data=pp[None]), metainfo=dict(img_shape=(s, s), ori_shape=(s, s)))
               for pp in proposals]
    samples = [d.to(args.device) for d in samples]
    images = images.to(args.device)
    runs = {"plain CE fp32": build(cfg, msg=False, bf16=False, device=args.device),
            "MSG fp32": build(cfg, msg=True, bf16=False, device=args.device),
            "MSG fp32 channels-last": build(cfg, msg=True, bf16=False, channels_last=True, device=args.device),
            "MSG bf16": build(cfg, msg=True, bf16=True, device=args.device),
            "MSG bf16 channels-last": build(cfg, msg=True, bf16=True, channels_last=True, device=args.device)}
    if args.compile:
        runs["MSG bf16 channels-last compiled"] = build(cfg, msg=True, bf16=True, channels_last=True,
                                                        device=args.device, compile=True)
    first_step: dict[str, float] = {}
    if not runs["MSG bf16"][1].bf16:
        print("warning: this machine has no native bf16; the bf16 run trains in fp32")
    times: dict[str, list[float]] = {k: [] for k in runs}
    step_losses: dict[str, list[float]] = {k: [] for k in runs}
    peak_gib: dict[str, float] = dict.fromkeys(runs, 0.0)
    for step in range(args.warmup + args.steps):
        for name, (model, wrapper) in runs.items():
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            torch.manual_seed(step)  # the same dropout masks for every run at this step
            start = time.perf_counter()
            with wrapper.optim_context(model):
                data = model.data_preprocessor(dict(inputs=list(images.to(torch.uint8)), data_samples=samples), True)
                losses = model.loss(data["inputs"], data["data_samples"])
            loss = sum(v for k, v in losses.items() if "loss" in k)
            wrapper.update_params(loss)
            if cuda:
                torch.cuda.synchronize()
                peak_gib[name] = max(peak_gib[name], torch.cuda.max_memory_allocated() / 2**30)
            if step == 0:
                first_step[name] = time.perf_counter() - start
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
            step_losses[name].append(float(loss.detach()))
    ce, msg, msg_cl, bf16, bf16_cl = (statistics.median(times[k]) for k in list(runs)[:5])
    print(f"config {Path(args.config).name}, batch {args.batch}x{args.size}^2, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps")
    print(f"plain CE: {ce:.3f} s/step   MSG (Variation + Omission): {msg:.3f} s/step   "
          f"overhead: {100 * (msg / ce - 1):+.1f}% (target <= 10%)")
    print(f"MSG fp32: {msg:.3f} s/step   MSG fp32 channels-last: {msg_cl:.3f} s/step   MSG bf16: {bf16:.3f} s/step"
          f"   MSG bf16 channels-last: {bf16_cl:.3f} s/step")
    print(f"channels-last speed-up in fp32: {msg / msg_cl:.2f}x, in bf16: {bf16 / bf16_cl:.2f}x")
    speedup = msg / min(bf16, bf16_cl)
    hardware = torch.cuda.get_device_name() if cuda else cpu_description()
    native = runs["MSG bf16"][1].bf16
    ratio = gemm_bf16_ratio(args.device)
    print(f"bf16 speed-up: {speedup:.2f}x (fp32 vs the faster bf16 layout)")
    print(f"hardware: {hardware}; bf16 vs fp32 speed-up of a 1024^3 matrix product here: {ratio:.3g}x")
    trains_bf16 = bf16_supported(torch.device(args.device))
    if native:
        print(f"bf16 speed-up / matrix-product ratio: {speedup / ratio:.2f} (target >= 0.85 on a CPU with native bf16)")
        if not trains_bf16:
            print("bf16 is native here but slower than fp32 (measured once per machine, common.precision): "
                  "the configs train and predict in fp32 on this machine")
    else:
        print("this CPU has no native bf16: the configs train in fp32 here (BF16OptimWrapper falls back)")
    # the fraction of the ceiling for the precision training uses here, in the configs' layout
    step_name, step_time = ("MSG bf16 channels-last", bf16_cl) if trains_bf16 else ("MSG fp32 channels-last", msg_cl)
    model, wrapper = runs[step_name]
    flops = step_flops(model, wrapper, images, samples)
    achieved = flops / step_time / 1e9
    head = model.decode_head
    feat = args.size // 8
    ceiling = conv_ceiling_gflops(head.in_channels + len(head.pool_scales) * head.channels, feat, feat,
                                  batch=args.batch, bf16=trains_bf16, channels_last=True, device=args.device,
                                  out_channels=head.channels)
    print(f"{step_name} step (the precision training uses here): {flops / 1e9:.1f} GFLOP (counted by torch's "
          f"FlopCounterMode), {achieved:.1f} GFLOP/s; the PSP bottleneck convolution alone ({feat}x{feat}, batch "
          f"{args.batch}, same precision and layout): {ceiling:.1f} GFLOP/s; fraction of the ceiling: "
          f"{achieved / ceiling:.2f} (target >= 0.50)")
    if args.compile:
        compiled = statistics.median(times["MSG bf16 channels-last compiled"])
        warm = first_step["MSG bf16 channels-last compiled"] - first_step["MSG bf16 channels-last"]
        print(f"MSG bf16 channels-last compiled: {compiled:.3f} s/step (first step {warm:+.1f} s over eager: the "
              f"compile warm-up); speed-up over fp32 {msg / compiled:.2f}x, over eager bf16 {bf16_cl / compiled:.2f}x")
    if cuda:
        print("peak GPU memory per step: " + "   ".join(f"{k}: {v:.2f} GiB" for k, v in peak_gib.items()))
    fp32_losses, bf16_losses = step_losses["MSG fp32"], step_losses["MSG bf16"]
    rel = [abs(b - f) / max(abs(f), 1e-12) for f, b in zip(fp32_losses, bf16_losses, strict=True)]
    print("MSG loss per step, fp32 / bf16: "
          + "  ".join(f"{f:.4f}/{b:.4f}" for f, b in zip(fp32_losses, bf16_losses, strict=True))
          + f"   max relative difference {max(rel):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
