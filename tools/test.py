"""Test a checkpoint on the config's test set (mmseg 1.x conventions): pooled mIoU / mDice.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--tta] [--tta-ratios R ...]
                         [--cfg-options k=v ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS

Without ``--tta``: the config's ``test_pipeline`` (1x). ``--tta``: the config's ``tta_pipeline`` run
through ``SegTTAModel`` (mmseg 1.x convention); ``--tta-ratios`` replaces its scale ratios.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

import MSG  # noqa: F401
from common.hardware import keep_freed_memory
from common.io import InputError
from MSG.apis import check_weights_fit, load_config
from MSG.compat.launch import launched
from MSG.compat.safe_globals import allow_mmengine_checkpoints, check_checkpoint
from MSG.datasets.tta import config_tta_pipeline, positive_ratio
from MSG.engine.preflight import check_test_inputs
from MSG.engine.runner import QuietRunner


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Test a segmentor checkpoint")
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("--work-dir", help="where to save the metrics")
    p.add_argument("--out", help="save the predicted masks (0/1 PNG) here")
    p.add_argument("--tta", action="store_true", help="the config's tta_pipeline (scales x flip, softmax averaged)")
    p.add_argument("--tta-ratios", type=positive_ratio, nargs="+", help="TTA with these scale ratios (implies --tta)")
    p.add_argument("--cfg-options", nargs="+", action=DictAction)
    p.add_argument("--verbose", action="store_true", help="log the environment, the full config and the hooks")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keep_freed_memory()
    try:
        cfg = load_config(args.config, args.cfg_options)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cfg.launcher = args.launcher
    cfg.log_verbose = args.verbose
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or osp.join(
        "./work_dirs", osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    try:
        check_test_inputs(cfg, args.checkpoint)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cfg.default_hooks.pop("visualization", None)
    if args.out:
        cfg.test_evaluator["output_dir"] = args.out
        cfg.test_evaluator["keep_results"] = True
    if args.tta or args.tta_ratios:
        pipeline = config_tta_pipeline(cfg, args.tta_ratios)
        cfg.test_dataloader.dataset.pipeline = pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    allow_mmengine_checkpoints()
    with launched(cfg, args.launcher):
        runner = QuietRunner.from_cfg(cfg)
        model = runner.model
        while hasattr(model, "module"):  # DDP and SegTTAModel wrap the segmentor
            model = model.module
        try:
            state = check_checkpoint(args.checkpoint)
            check_weights_fit(model, state.get("state_dict", state), args.checkpoint)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        runner.test()
    return 0


if __name__ == "__main__":
    sys.exit(main())
