"""Convert an mmseg-0.x PSPNet-WRes38 checkpoint (or a bare ``res38d.pth``) for this project (mmseg 1.x).

    python tools/convert_checkpoint.py SRC DST [--config CONFIG]

Parameter names already match (``backbone.conv1a``, ``backbone.b2_1.bn_branch2a`` ...,
``decode_head.psp_modules`` / ``bottleneck`` / ``conv_seg``, ``auxiliary_head.convs``), so the
conversion only: unwraps ``state_dict``, strips DataParallel ``module.`` prefixes, prefixes a bare
backbone (``res38d.pth``) with ``backbone.``, moves mmseg-0.x ``meta.CLASSES/PALETTE`` into 1.x
``meta.dataset_meta``, and drops optimizer state. With ``--config``, it builds that model and
reports missing/unexpected keys (the MSG embedding branch is new, so it is expected to be missing).
"""
from __future__ import annotations

import argparse
import io
import sys

import torch

from common.io import InputError, write_bytes
from MSG.compat.safe_globals import check_checkpoint

HEAD_PREFIXES = ("backbone.", "decode_head.", "auxiliary_head.", "neck.")


def convert_state(ckpt: dict) -> dict:
    """Returns the converted checkpoint dict ``{'state_dict': ..., 'meta': ...}``."""
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("no tensor state dict found")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith(HEAD_PREFIXES) for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}
    meta = dict(ckpt.get("meta", {}) or {})
    classes, palette = meta.pop("CLASSES", None), meta.pop("PALETTE", None)
    if classes is not None:
        meta["dataset_meta"] = dict(classes=tuple(classes), palette=palette)
    return {"state_dict": state, "meta": meta}


def check_against_config(state: dict, config: str) -> tuple[list[str], list[str]]:
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import MSG  # noqa: F401
    from MSG.apis import load_config

    register_all_modules(init_default_scope=True)  # builds by mmseg's names outside a Runner too
    cfg = load_config(config)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    result = model.load_state_dict(state, strict=False)
    return sorted(result.missing_keys), sorted(result.unexpected_keys)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Convert mmseg-0.x / res38d checkpoints to this project's format")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--config", help="report missing/unexpected keys against this model config")
    args = p.parse_args(argv)
    try:
        ckpt = check_checkpoint(args.src)
        try:
            converted = convert_state(ckpt)
        except ValueError as err:
            raise InputError(args.src, f"not a convertible checkpoint ({err})") from None
        # checked before anything is written
        missing, unexpected = check_against_config(converted["state_dict"], args.config) if args.config else ([], [])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    buffer = io.BytesIO()
    torch.save(converted, buffer)
    try:
        write_bytes(args.dst, buffer.getvalue())
    except OSError as err:
        print(f"error: {args.dst}: cannot write ({err.strerror or err})", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: {len(converted['state_dict'])} tensors")
    if args.config:
        print(f"missing keys ({len(missing)}): {missing}")
        print(f"unexpected keys ({len(unexpected)}): {unexpected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
