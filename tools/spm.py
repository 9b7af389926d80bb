"""SPM command line: mine gland proposals for every image of a folder.

    python tools/spm.py --train_image_path DIR --output_root DIR --nConv 3 --cluster_num 5

Outputs, under ``OUTPUT_ROOT/cluster_{K}_nConv_{N}/``:

* ``gland_proposal/NAME.png``  uint8 map: 0 background, 1 gland border, 2 gland interior
* ``border_proposal/NAME.png`` the selected (darkest large) cluster, 0/255
* ``cluster_label/NAME.png``   colour map of the K clusters
* ``overlay/NAME.png``         proposal over the image
* ``summary.csv``              one row per image (status, selected cluster, fractions, seconds, warnings)

Many images: ``tools/dist_spm.sh IMAGES OUT NPROC`` starts NPROC processes with torchrun;
rank r takes images r, r+NPROC, ...
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from common.batch import ImageOutcome, claim_output_root, run_image_batch
from common.cli import exit_cleanly_on_sigterm, int_at_least, resolve_device
from common.hardware import keep_freed_memory
from common.io import InputError, prepare_batch
from SPM.outputs import SUMMARY_FIELDS, write_proposal
from SPM.pipeline import GroupMiner
from SPM.train import CSNetTrainer, SPMTrainConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SPM: Selective Proposal Mining of gland proposals")
    p.add_argument("--train_image_path", required=True, help="folder of H&E images (.bmp .png .tif .jpg)")
    p.add_argument("--output_root", default="work_dirs/spm", help="output root folder")
    p.add_argument("--nConv", type=int_at_least(1), default=3, help="number of 3x3 conv blocks in CSNet")
    p.add_argument("--nChannel", type=int_at_least(1), default=128, help="embedding channels of CSNet")
    p.add_argument("--cluster_num", type=int_at_least(2), default=5, help="K of K-means")
    p.add_argument("--maxIter", type=int_at_least(1), default=50, help="optimisation steps per image")
    p.add_argument("--minLabels", type=int, default=3,
                   help="accepted for compatibility; the original SPM never used it (no early stop)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--stepsize_ce", type=float, default=1.0, help="weight of the argmax CE loss")
    p.add_argument("--stepsize_ss", type=float, default=5.0, help="weight of the spatial continuity loss")
    p.add_argument("--min_border_pixels", type=int_at_least(0), default=10000,
                   help="the border cluster must have more pixels than this")
    p.add_argument("--hole_area", type=int_at_least(0), default=15000, help="fill holes smaller than this (px)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seeds each image's CSNet init (the original was unseeded)")
    p.add_argument("--exact", action="store_true",
                   help="reference path: fp32, eager, full-pixel K-means (slow)")
    p.add_argument("--no-compile", dest="compile", action="store_false", default=None,
                   help="fast path without torch.compile (no C++ compiler needed); by default it compiles "
                        "where that is the faster path (CUDA, CPUs where bf16 is native and faster than fp32)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="opt-in: mine at this fraction of the resolution, upsample the cluster map")
    p.add_argument("--batch_images", type=int_at_least(1), default=1,
                   help="train up to N same-size images' CSNets in one pass (each keeps its own network, seed, "
                        "optimiser and BatchNorm statistics; same maps as one at a time); pays on a GPU")
    p.add_argument("--skip_existing", action="store_true",
                   help="skip images whose gland_proposal already exists (resume a run)")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        p.error(f"--scale must be in (0, 1], got {args.scale}")
    return args


def output_dirs(root: Path, args: argparse.Namespace) -> dict[str, Path]:
    base = root / f"cluster_{args.cluster_num}_nConv_{args.nConv}"
    return {k: base / k for k in ("gland_proposal", "border_proposal", "cluster_label", "overlay")} | {"base": base}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    keep_freed_memory()
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    out = output_dirs(Path(args.output_root), args)
    try:
        device = resolve_device(args.device, local_rank)
        files = prepare_batch(args.train_image_path, out.values())
        with claim_output_root(out["base"], output_settings(args), resume=args.skip_existing, rank=rank):
            return run(args, device, files, out, rank, world)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the summary could not be written (disk full, folder removed)
        print(f"error: {out['base']}: cannot write ({err.strerror or err})", file=sys.stderr)
        return 2


def output_settings(args: argparse.Namespace) -> dict:
    """The settings that shape the maps (recorded in settings.json; a resume must match them)."""
    keys = ("nConv", "nChannel", "cluster_num", "maxIter", "lr", "stepsize_ce", "stepsize_ss",
            "min_border_pixels", "hole_area", "seed", "exact", "scale")
    return {"tool": "SPM", **{k: getattr(args, k) for k in keys}}


def run(args: argparse.Namespace, device: torch.device, files: list[Path], out: dict[str, Path], rank: int,
        world: int) -> int:
    """Mine every file of this rank into ``out``; returns the exit code."""
    if device.type == "cpu" and world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))

    cfg = SPMTrainConfig(
        n_channels=args.nChannel, n_conv=args.nConv, max_iter=args.maxIter, lr=args.lr,
        stepsize_ce=args.stepsize_ce, stepsize_ss=args.stepsize_ss,
    )
    trainer = CSNetTrainer(cfg, device, exact=args.exact, compile=args.compile)
    summary = out["base"] / "summary.csv"

    def done_marker(name: str) -> Path:
        return out["gland_proposal"] / f"{name}.png"

    miner = GroupMiner(list(files[rank::world]), trainer, args.batch_images,
                       is_done=lambda path: args.skip_existing and done_marker(path.stem).exists(),
                       cluster_num=args.cluster_num, seed=args.seed, scale=args.scale,
                       min_border_pixels=args.min_border_pixels, hole_area=args.hole_area)

    def mine(path: Path, status) -> ImageOutcome:
        def on_step(it: int, loss: float) -> None:
            status(f"step {it + 1}/{cfg.max_iter} loss {loss:.3f}")

        mined = miner(path, on_step=on_step)
        return ImageOutcome(write_proposal(out, path.stem, mined.image, mined.proposal, mined.labels), mined.warnings)

    start = time.perf_counter()
    counts = run_image_batch(files, mine, done_marker, summary,
                             SUMMARY_FIELDS, skip_existing=args.skip_existing, rank=rank, world=world)
    who = f"rank {rank}/{world}: " if world > 1 else ""
    print(f"SPM {who}{counts.done} done, {counts.skipped} skipped, {counts.failed} failed of {counts.files} files "
          f"in {time.perf_counter() - start:.1f} s; proposals in {out['gland_proposal']}, summary in {summary}")
    return counts.exit_code

if __name__ == "__main__":
    sys.exit(main())
