"""Publish a trained checkpoint as a small, self-describing model file (the form of ``weights/mssg_glas.pth``).

    python tools/publish_model.py work_dirs/RUN/iter_N.pth weights/mssg_glas.pth [--config CONFIG] [--fp32]

Keeps the weights (fp16 unless ``--fp32``; BN statistics and integer buffers as they are) and the
metadata inference needs -- the config (``meta.cfg``, so ``tools/predict.py MODEL IMAGES`` works with the
file alone), the class names, the iteration and seed -- and drops the optimizer and scheduler state.
Writes the file atomically and its sha256 into ``SHA256SUMS`` beside it, which ``load_model`` checks
for files of that folder. ``--config`` replaces the config the checkpoint carries (e.g. one whose test
settings were revised after training; the model it builds must fit the weights).
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import torch

from common.io import InputError, write_bytes
from MSG.apis.inference import SHA256_FILE, file_sha256, load_model
from MSG.compat.safe_globals import check_checkpoint

META_KEYS = ("cfg", "dataset_meta", "iter", "epoch", "seed", "experiment_name", "mmengine_version", "time")


def publishable(ckpt: dict, half: bool = True) -> dict:
    """``{'state_dict', 'meta'}`` of ``ckpt`` with float weights in fp16 when ``half`` (BN running
    statistics stay fp32: their variance can underflow in fp16)."""
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("no tensor state dict found")
    out = {}
    for name, tensor in state.items():
        keep = not tensor.is_floating_point() or name.endswith(("running_mean", "running_var")) or not half
        out[name] = tensor.detach().clone() if keep else tensor.detach().half()
    meta = {k: v for k, v in (ckpt.get("meta") or {}).items() if k in META_KEYS}
    return {"state_dict": out, "meta": meta}


def record_sha256(model_path: Path) -> str:
    """Write ``model_path``'s sha256 into ``SHA256SUMS`` beside it (other lines kept); returns it."""
    digest = file_sha256(model_path)
    sums = model_path.parent / SHA256_FILE
    lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else [])
             if ln.split()[-1:] != [model_path.name]]
    write_bytes(sums, ("\n".join(sorted([*lines, f"{digest}  {model_path.name}"])) + "\n").encode())
    return digest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="a checkpoint of tools/train.py")
    p.add_argument("dst", type=Path, help="the model file to write (e.g. weights/mssg_glas.pth)")
    p.add_argument("--config", type=Path, help="store this config instead of the checkpoint's own")
    p.add_argument("--fp32", action="store_true", help="keep fp32 weights (twice the size)")
    args = p.parse_args(argv)
    try:
        ckpt = check_checkpoint(args.src)
        if args.config is not None:
            from MSG.apis import load_config

            ckpt.setdefault("meta", {})["cfg"] = load_config(args.config).pretty_text
        if not (ckpt.get("meta") or {}).get("cfg"):
            raise InputError(args.src, "holds no config (meta['cfg']); publish a checkpoint of tools/train.py")
        try:
            model = publishable(ckpt, half=not args.fp32)
        except ValueError as err:
            raise InputError(args.src, str(err)) from None
        buffer = io.BytesIO()
        torch.save(model, buffer)
        with tempfile.TemporaryDirectory() as tmp:
            # the file must build its model from its own config and its weights must fit it
            (Path(tmp) / args.dst.name).write_bytes(buffer.getvalue())
            load_model(None, Path(tmp) / args.dst.name)
        write_bytes(args.dst, buffer.getvalue())
        digest = record_sha256(args.dst)
    except (InputError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst} ({args.dst.stat().st_size / 1e6:.1f} MB, sha256 {digest}); "
          f"recorded in {args.dst.parent / SHA256_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
