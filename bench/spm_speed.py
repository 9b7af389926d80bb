"""SPM speed benchmark: the exact reference path vs the fast default path, in one process.

    python bench/spm_speed.py [--images DIR --masks DIR --num 10 --scale 0.5]
    python bench/spm_speed.py --paths [--bench-scale 0.25]     # every way to run the step, here
    python bench/spm_speed.py --ceiling                        # the step beside its hardware ceiling
    python bench/spm_speed.py --batch-images 8 --scale 0.5     # per-image loop vs one batched pass
    python bench/spm_speed.py --paths --glibc-malloc          # the same with glibc's default allocator

Like the tools, the bench keeps freed memory for reuse (``common.hardware.keep_freed_memory``);
``--glibc-malloc`` measures glibc's default instead (large blocks mapped and unmapped every step).

Both paths mine the same N images (the first N in sorted order); the script prints, for each,
seconds per image (wall clock, the first image's torch.compile warm-up included) and the pooled
proposal mIoU against the masks, then the speed ratio and the mIoU difference against the
targets (>= 5x faster, <= 1 point lower). ``--scale`` adds the opt-in reduced-resolution path.
Maps and a CSV of the numbers go to ``--out``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import torch

from common.cli import resolve_device
from common.hardware import add_allocator_option, conv_ceiling_gflops, keep_freed_memory
from common.io import find_ground_truth, is_image_file, list_files, read_mask, write_csv, write_png
from evaluation.pixel import PooledCounts
from SPM.model import csnet_step_flops
from SPM.pipeline import mine_file
from SPM.train import CSNetTrainer, SPMTrainConfig

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_GLAS = ROOT.parent / "shared" / "data" / "glas" / "train"


def run_path(name: str, files: list[Path], masks: Path, trainer: CSNetTrainer, scale: float, out: Path) -> dict:
    counts = PooledCounts()
    seconds = []
    for i, path in enumerate(files):
        start = time.perf_counter()
        mined = mine_file(path, trainer, scale=scale)
        seconds.append(time.perf_counter() - start)
        write_png(out / name / f"{path.stem}.png", mined.proposal.proposal_map)
        gt = read_mask(find_ground_truth(masks, path.stem)) > 0
        counts.update(mined.proposal.proposal_map > 0, gt)
        print(f"  [{name}] {i + 1}/{len(files)} {path.stem}: {seconds[-1]:.1f} s", flush=True)
    return {"path": name, "images": len(files), "s_per_image": sum(seconds) / len(seconds),
            "first_image_s": seconds[0], "mIoU": counts.miou(), "Dice": counts.dice()}


def step_vs_ceiling(args: argparse.Namespace) -> int:
    """Achieved GFLOP/s of the fast path's CSNet step (FLOPs from the layer shapes) and the same run's
    GFLOP/s of one 128 -> 128 3x3 convolution (forward + both gradients) of the image's size, precision
    and layout: the practical ceiling on this machine."""
    cfg = SPMTrainConfig(max_iter=args.steps)
    device = resolve_device(args.device, 0)
    h, w = (round(s * args.bench_scale) for s in (522, 775))
    image = torch.rand(1, 3, h, w)
    trainer = CSNetTrainer(cfg, device)
    trainer.fit(image, seed=0)  # warm-up (torch.compile)
    start = time.perf_counter()
    trainer.fit(image, seed=0)
    per_step = (time.perf_counter() - start) / cfg.max_iter
    achieved = csnet_step_flops(h, w, 3, cfg.n_channels, cfg.n_conv) / per_step / 1e9
    ceiling = conv_ceiling_gflops(cfg.n_channels, h, w, bf16=trainer.use_bf16, channels_last=trainer.channels_last,
                                  device=str(device))
    print(f"SPM step {w}x{h}: {per_step:.3f} s/step, {achieved:.1f} GFLOP/s (bf16={trainer.use_bf16}, "
          f"channels_last={trainer.channels_last}, compile={trainer.compile}); one 128->128 3x3 conv of that "
          f"size: {ceiling:.1f} GFLOP/s; fraction of the ceiling: {achieved / ceiling:.2f} (target >= 0.60)")
    return 0


PATHS = {"exact": None, "eager NCHW": (False, False), "eager channels-last": (False, True),
         "compiled NCHW": (True, False), "compiled channels-last": (True, True)}


def one_path(args: argparse.Namespace) -> int:
    """(in a child process) seconds per CSNet step of one path, printed as ``PATH_SECONDS <s>``."""
    cfg = SPMTrainConfig(max_iter=args.steps)
    device = resolve_device(args.device, 0)
    h, w = (round(s * args.bench_scale) for s in (522, 775))
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    setting = PATHS[args.one_path]
    if setting is None:
        trainer = CSNetTrainer(cfg, device, exact=True)
    else:
        trainer = CSNetTrainer(cfg, device, compile=False)
        trainer.compile, trainer.channels_last = setting
    trainer.fit(image, seed=0)  # warm-up (and compile)
    start = time.perf_counter()
    trainer.fit(image, seed=0)
    print(f"PATH_SECONDS {(time.perf_counter() - start) / (cfg.max_iter + 1):.4f} bf16={trainer.use_bf16}")
    return 0


def compare_paths(args: argparse.Namespace) -> int:
    """Every way of running the CSNet step on this machine, each in its own process (a crash of one
    -- a compiler bug -- is reported, not fatal), beside the path the fast default picks here."""
    import subprocess

    from common.hardware import cpu_description
    from SPM.train import fast_path_settings

    device = resolve_device(args.device, 0)
    bf16, channels_last, compiled = fast_path_settings(device, SPMTrainConfig())
    h, w = (round(s * args.bench_scale) for s in (522, 775))
    hardware = torch.cuda.get_device_name() if device.type == "cuda" else cpu_description()
    limits = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MSSG_BF16")
              if k in os.environ]
    hardware += f" [{', '.join(limits)}]" if limits else ""
    print(f"CSNet step at {w}x{h}, {hardware}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'glibc malloc' if args.glibc_malloc else 'freed memory kept'}")
    chosen = ("compiled " if compiled else "eager ") + ("channels-last" if channels_last else "NCHW")
    results = {}
    for name in PATHS:
        cmd = [sys.executable, __file__, "--one-path", name, "--steps", str(args.steps),
               "--bench-scale", str(args.bench_scale), "--device", args.device]
        cmd += ["--glibc-malloc"] if args.glibc_malloc else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PATH_SECONDS")), None)
        if proc.returncode or line is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results[name] = None
            print(f"  {name:<24} failed (exit {proc.returncode}: {tail[:100]})")
            continue
        results[name] = float(line.split()[1])
        precision = "fp32" if name == "exact" else line.split()[2].replace("bf16=True", "bf16").replace(
            "bf16=False", "fp32")
        mark = "   <- the default here" if name == chosen else ""
        print(f"  {name:<24} {results[name]:.3f} s/step ({precision}){mark}")
    exact = results.get("exact")
    if exact and results.get(chosen):
        print(f"default path ({chosen}, bf16={bf16}): {exact / results[chosen]:.2f}x the exact path")
    return 0


def loop_vs_batched(args: argparse.Namespace, files: list[Path]) -> int:
    """Images per second of the per-image loop and of ``--batch_images N`` on the same images (the
    first N of one size), and how far their proposal maps agree."""
    from common.hardware import cpu_description
    from common.io import read_bgr
    from SPM.pipeline import mine_array, mine_arrays

    device = resolve_device(args.device, 0)
    images = [read_bgr(f)[0] for f in files]
    size = images[0].shape
    images = [im for im in images if im.shape == size][: args.batch_images]
    trainer = CSNetTrainer(SPMTrainConfig(), device)
    scale = args.scale[0] if args.scale else 1.0
    hardware = torch.cuda.get_device_name() if device.type == "cuda" else cpu_description()
    print(f"{len(images)} images of {size[1]}x{size[0]} at scale {scale:g}, {hardware}, "
          f"{torch.get_num_threads()} threads; fast path bf16={trainer.use_bf16} compile={trainer.compile}")
    mine_arrays(images[:2], trainer, scale=scale)  # warm-up (and compile) of both forms
    mine_array(images[0], trainer, scale=scale)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    loop = [mine_array(im, trainer, scale=scale)[1].proposal_map for im in images]
    sync()
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = [r[1].proposal_map for r in mine_arrays(images, trainer, scale=scale)]
    sync()
    batched_s = time.perf_counter() - start
    agree = sum((a == b).sum() for a, b in zip(loop, batched, strict=True)) / sum(a.size for a in loop)
    print(f"per-image loop: {len(images) / loop_s:.3f} images/s   --batch_images {len(images)}: "
          f"{len(images) / batched_s:.3f} images/s   ({loop_s / batched_s:.2f}x); maps agree on {agree:.2%} "
          "of pixels (fast path: bf16 and K-means on a sample, so not bit-equal)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=DEFAULT_GLAS / "images")
    p.add_argument("--masks", type=Path, default=DEFAULT_GLAS / "masks")
    p.add_argument("--num", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--scale", type=float, nargs="*", default=[], help="also time the fast path at these scales")
    p.add_argument("--skip_exact", action="store_true", help="fast path(s) only (no ratio)")
    p.add_argument("--out", type=Path, default=ROOT / "work_dirs" / "bench_spm")
    p.add_argument("--steps", type=int, default=10, help="with --ceiling: timed training steps")
    p.add_argument("--bench-scale", type=float, default=0.5, help="with --ceiling: image size as a fraction of 775x522")
    p.add_argument("--ceiling", action="store_true",
                   help="only the CSNet step's GFLOP/s beside one large convolution's on this machine")
    p.add_argument("--paths", action="store_true",
                   help="only the step time of every path (eager/compiled x NCHW/channels-last, exact), "
                        "each in its own process, and which one the default picks here")
    p.add_argument("--one-path", choices=list(PATHS), help=argparse.SUPPRESS)
    p.add_argument("--batch-images", type=int, default=0,
                   help="only images/s of the per-image loop vs one pass over N same-size images")
    add_allocator_option(p)
    args = p.parse_args(argv)
    if not args.glibc_malloc:
        keep_freed_memory()
    if args.one_path:
        return one_path(args)
    if args.paths:
        return compare_paths(args)
    if args.ceiling:
        return step_vs_ceiling(args)
    if not args.images.is_dir():
        print(f"error: {args.images}: image folder not found (pass --images/--masks)", file=sys.stderr)
        return 2
    files = [f for f in list_files(args.images) if is_image_file(f)][: max(args.num, 4 * args.batch_images)]
    if args.batch_images:
        return loop_vs_batched(args, files)
    device = resolve_device(args.device, 0)
    cfg = SPMTrainConfig()
    h, w = cv2.imread(str(files[0])).shape[:2]
    print(f"SPM speed: {len(files)} images from {args.images} (first is {w}x{h}), device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs = []
    if not args.skip_exact:
        runs.append(run_path("exact", files, args.masks, CSNetTrainer(cfg, device, exact=True), 1.0, args.out))
    fast = CSNetTrainer(cfg, device)
    runs.append(run_path("fast", files, args.masks, fast, 1.0, args.out))
    for s in args.scale:
        runs.append(run_path(f"fast_scale{s:g}", files, args.masks, CSNetTrainer(cfg, device), s, args.out))
    print(f"\nfast path: bf16={fast.use_bf16} channels_last={fast.channels_last} compile={fast.compile}")
    print(f"{'path':<18}{'s/image':>10}{'first img s':>13}{'mIoU':>9}{'Dice':>9}{'speed-up':>10}{'dmIoU pt':>10}")
    base = runs[0]
    for r in runs:
        r["speedup"] = base["s_per_image"] / r["s_per_image"]
        r["delta_mIoU_points"] = 100 * (r["mIoU"] - base["mIoU"])
        print(f"{r['path']:<18}{r['s_per_image']:>10.1f}{r['first_image_s']:>13.1f}{r['mIoU']:>9.4f}{r['Dice']:>9.4f}"
              f"{r['speedup']:>9.2f}x{r['delta_mIoU_points']:>+10.2f}")
    if not args.skip_exact:
        f = runs[1]
        met = f["speedup"] >= 5 and f["delta_mIoU_points"] >= -1
        print(f"target (fast >= 5x exact, mIoU at most 1 point lower): {'MET' if met else 'NOT MET'} "
              f"({f['speedup']:.2f}x, {f['delta_mIoU_points']:+.2f} pt)")
    write_csv(args.out / "spm_speed.csv", runs, list(runs[0].keys()))
    print(f"maps and spm_speed.csv in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
