"""SPM speed benchmark: the exact reference path vs the fast default path, in one process.

    python bench/spm_speed.py [--images DIR --masks DIR --num 10 --scale 0.5]

Both paths mine the same N images (the first N in sorted order); the script prints, for each,
seconds per image (wall clock, the first image's torch.compile warm-up included) and the pooled
proposal mIoU against the masks, then the speed ratio and the mIoU difference against the
targets (>= 5x faster, <= 1 point lower). ``--scale`` adds the opt-in reduced-resolution path.
Maps and a CSV of the numbers go to ``--out``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import torch

from common.cli import resolve_device
from common.io import find_ground_truth, is_image_file, list_files, read_mask, write_csv, write_png
from evaluation.pixel import PooledCounts
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=DEFAULT_GLAS / "images")
    p.add_argument("--masks", type=Path, default=DEFAULT_GLAS / "masks")
    p.add_argument("--num", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--scale", type=float, nargs="*", default=[], help="also time the fast path at these scales")
    p.add_argument("--skip_exact", action="store_true", help="fast path(s) only (no ratio)")
    p.add_argument("--out", type=Path, default=ROOT / "work_dirs" / "bench_spm")
    args = p.parse_args(argv)
    if not args.images.is_dir():
        print(f"error: {args.images}: image folder not found (pass --images/--masks)", file=sys.stderr)
        return 2
    files = [f for f in list_files(args.images) if is_image_file(f)][: args.num]
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
