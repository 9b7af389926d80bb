"""Train a segmentor (mmseg 1.x conventions).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS WORK_DIR          # torchrun; NCCL+SyncBN on GPUs, Gloo+BN on CPU
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

import MSG  # noqa: F401  (registers MSG and the mmcv.ops stand-in before mmseg loads)
from common.hardware import keep_freed_memory
from common.io import InputError
from MSG.apis.config import load_config
from MSG.compat.launch import launched
from MSG.compat.safe_globals import allow_mmengine_checkpoints
from MSG.engine.preflight import check_train_inputs
from MSG.engine.runner import QuietRunner


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a segmentor")
    p.add_argument("config", help="train config file path")
    p.add_argument("--work-dir", help="the dir to save logs and models")
    p.add_argument("--resume", action="store_true", help="resume from the latest checkpoint in the work dir")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: bf16 (BF16OptimWrapper) where the CPU/GPU runs it natively, "
                        "else fp16 AmpOptimWrapper on CUDA")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    p.add_argument("--verbose", action="store_true", help="log the environment, the full config and the hooks")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def select_amp(cfg: Config) -> None:
    """bf16 autocast where native (no loss scaling needed); fp16 with dynamic loss scaling on older GPUs."""
    import torch

    from common.precision import bf16_supported

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for key in ("loss_scale", "dtype"):
        cfg.optim_wrapper.pop(key, None)
    if bf16_supported(device) or device.type == "cpu":
        cfg.optim_wrapper.type = "BF16OptimWrapper"  # on a CPU without bf16 it warns and trains in fp32
    else:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"


def build_cfg(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.log_verbose = args.verbose
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    head = cfg.model.get("decode_head") or {}
    if head.get("type") == "MSGPSPHead" and not head.get("variation"):
        # without MSG for Variation the embedding branch gets no gradient; DDP must be told
        cfg.setdefault("find_unused_parameters", True)
    if args.amp:
        select_amp(cfg)
    cfg.resume = args.resume
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keep_freed_memory()
    try:
        cfg = build_cfg(args)
        check_train_inputs(cfg)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    allow_mmengine_checkpoints()
    try:
        with launched(cfg, args.launcher):
            QuietRunner.from_cfg(cfg).train()
    except FloatingPointError as err:  # a diverged run: MSSGEncoderDecoder refuses a non-finite loss
        print(f"error: {cfg.work_dir}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
