"""Self-supervised backbone pretraining on unlabeled images (VICRegL, MSG/selfsup/).

    python tools/pretrain.py CONFIG [--work-dir DIR] [--resume] [--device auto|cpu|cuda]
                             [--cfg-options data.image_dir=DIR schedule.iters=N ...]

Writes ``WORK_DIR/backbone.pth`` for ``model.backbone.init_cfg=dict(type="Pretrained", checkpoint=...)``.
Exit codes: 0 done; 1 the run diverged (non-finite loss); 2 bad config, images or resume.
"""
from __future__ import annotations

import argparse
import sys

from mmengine.config import DictAction

import MSG  # noqa: F401  (registers WideRes38)
from common.cli import exit_cleanly_on_sigterm, load_config
from common.hardware import keep_freed_memory
from common.io import InputError
from MSG.selfsup.trainer import pretrain


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Self-supervised backbone pretraining (VICRegL)")
    p.add_argument("config", help="pretraining config (configs/selfsup/)")
    p.add_argument("--work-dir", help="output folder (default: the config's work_dir)")
    p.add_argument("--resume", action="store_true", help="continue from WORK_DIR/latest.pth if it exists")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    keep_freed_memory()
    try:
        cfg = load_config(args.config, args.cfg_options)
        name = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
        device = torch.device("cpu" if name == "auto" else name)
        pretrain(cfg, args.work_dir or cfg.work_dir, resume=args.resume, device=device)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
