"""Self-supervised pretraining loop: VICRegL on random view pairs of the unlabeled training images.

One process, plain PyTorch (the step is one forward/backward of two views; mmengine's runner would
add nothing but its dataset plumbing). Seeded per iteration (``numpy`` generator of ``[seed, iter]``),
so a resumed run draws the same views as an uninterrupted one. bf16 autocast where native
(:mod:`common.precision`). Writes into ``work_dir``:

* ``latest.pth``: model, optimizer, iteration and the config (every ``checkpoint_interval``, atomic);
* ``scalars.jsonl``: one line of loss terms per ``log_interval``;
* ``backbone.pth``: at the end, ``{"state_dict": backbone weights, "meta": ...}``, loadable by the
  segmentation configs with ``backbone.init_cfg=dict(type="Pretrained", checkpoint=...)``.
"""
from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from common.io import InputError, check_unique_stems, is_image_file, list_files, read_bgr, write_bytes
from common.precision import bf16_supported
from MSG.selfsup.vicregl import DenseVICReg, VICRegWeights
from MSG.selfsup.views import ViewConfig, make_pair

# keys of the config whose change makes a checkpoint a different run (work_dir, logging may change)
RUN_KEYS = ("backbone", "in_channels", "data", "views", "method", "optim", "schedule", "seed", "mean", "std")


def load_images(image_dir: str | Path, scale: float) -> tuple[list[torch.Tensor], list[str]]:
    """Every image of ``image_dir`` as ``(3, H, W)`` RGB float in ``[0, 1]``, resized by ``scale`` (area)."""
    files = [f for f in list_files(image_dir) if is_image_file(f)]
    if not files:
        raise InputError(image_dir, "no images to pretrain on")
    check_unique_stems(files)
    images = []
    for path in files:
        bgr, _ = read_bgr(path)
        if scale != 1.0:
            h, w = bgr.shape[:2]
            bgr = cv2.resize(bgr, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        images.append(torch.from_numpy(rgb).permute(2, 0, 1).contiguous().float().div_(255))
    return images, [f.name for f in files]


def build_model(cfg: Config) -> DenseVICReg:
    backbone = MODELS.build(cfg.backbone)
    m = cfg.method
    return DenseVICReg(backbone, cfg.in_channels, tuple(m.global_dims), tuple(m.local_dims), grid=m.grid,
                       global_weight=m.global_weight, weights=VICRegWeights(**m.get("vicreg", {})))


def build_backbone(cfg: Config, checkpoint: str | Path) -> torch.nn.Module:
    """The backbone of a pretraining config with the weights of ``checkpoint`` (a ``backbone.pth`` this
    module wrote); ``"none"``: the random initialisation a from-scratch run starts from (seeded)."""
    torch.manual_seed(int(cfg.get("seed", 0)))
    backbone_cfg = dict(cfg.backbone)
    if str(checkpoint) != "none":
        if not Path(checkpoint).is_file():
            raise InputError(checkpoint, "backbone checkpoint not found")
        backbone_cfg["init_cfg"] = dict(type="Pretrained", checkpoint=str(checkpoint))
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    return backbone


def lr_at(it: int, lr: float, iters: int, warmup: int, final_ratio: float = 0.01) -> float:
    """Linear warm-up over ``warmup`` iterations, then cosine to ``final_ratio * lr``."""
    if it < warmup:
        return lr * (it + 1) / warmup
    t = (it - warmup) / max(1, iters - warmup)
    return lr * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def sample_batch(images: list[torch.Tensor], it: int, seed: int, batch_size: int, views: ViewConfig,
                 mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """Batch of view pairs for iteration ``it``: normalised ``(B, 3, S, S)`` tensors and geometries."""
    rng = np.random.default_rng([seed, it])
    v1s, v2s, g1s, g2s = [], [], [], []
    for idx in rng.integers(0, len(images), batch_size):
        v1, v2, g1, g2 = make_pair(images[idx], rng, views)
        v1s.append(v1)
        v2s.append(v2)
        g1s.append(g1)
        g2s.append(g2)

    def norm(v: list[torch.Tensor]) -> torch.Tensor:
        return (torch.stack(v) * 255 - mean) / std

    return norm(v1s), norm(v2s), g1s, g2s


def _run_config(cfg: Config) -> dict:
    """The keys of ``cfg`` that define the run, as plain JSON data (what a checkpoint records)."""
    whole = cfg.to_dict()
    return json.loads(json.dumps({k: whole.get(k) for k in RUN_KEYS}))


def _save(path: Path, obj: dict) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def pretrain(cfg: Config, work_dir: str | Path, resume: bool = False, device: torch.device | None = None,
             log: Callable[[str], None] = print) -> Path:
    """Run the schedule of ``cfg`` (see ``configs/selfsup/``); returns the path of ``backbone.pth``.

    Raises:
        InputError: bad image folder, or ``resume`` with a checkpoint of a different configuration.
        FloatingPointError: the loss became non-finite (diverged run): nothing more is written.
    """
    work_dir = Path(work_dir)
    device = device or torch.device("cpu")
    sched, optim_cfg = cfg.schedule, cfg.optim
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    if cfg.get("channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim_cfg.lr, weight_decay=optim_cfg.weight_decay)
    latest = work_dir / "latest.pth"
    start = 0
    if resume and latest.exists():
        state = torch.load(latest, map_location=device, weights_only=True)
        if state["run_config"] != _run_config(cfg):
            raise InputError(latest, "was written with a different configuration; use another --work-dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["iter"]
        log(f"resumed from {latest} at iteration {start}")
    images, names = load_images(cfg.data.image_dir, cfg.data.get("scale", 1.0))
    views = ViewConfig(**cfg.views)
    mean = torch.tensor(cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    bf16 = bf16_supported(device)
    log(f"pretraining on {len(images)} images ({cfg.data.image_dir}, scale {cfg.data.get('scale', 1.0)}), "
        f"{sched.iters} iterations of {sched.batch_size} pairs, {'bf16' if bf16 else 'fp32'} on {device}")
    scalars = work_dir / "scalars.jsonl"
    work_dir.mkdir(parents=True, exist_ok=True)
    if start == 0:
        scalars.unlink(missing_ok=True)
    else:  # drop lines logged after the checkpoint that is resumed
        kept = [ln for ln in scalars.read_text().splitlines() if json.loads(ln)["iter"] <= start] \
            if scalars.exists() else []
        write_bytes(scalars, "".join(ln + "\n" for ln in kept).encode())
    model.train()
    tic = time.perf_counter()
    for it in range(start, sched.iters):
        lr = lr_at(it, optim_cfg.lr, sched.iters, sched.warmup_iters)
        for group in optimizer.param_groups:
            group["lr"] = lr
        v1, v2, g1, g2 = sample_batch(images, it, cfg.seed, sched.batch_size, views, mean, std)
        v1, v2 = v1.to(device), v2.to(device)
        if cfg.get("channels_last", False):
            v1, v2 = v1.contiguous(memory_format=torch.channels_last), v2.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(v1, v2, g1, g2)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss ({loss.item()}) at iteration {it + 1}: the run diverged "
                                     f"(lower optim.lr); {latest} keeps the last finite state")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = it + 1
        if done % sched.log_interval == 0 or done == sched.iters:
            sec = (time.perf_counter() - tic) / (done - start)
            row = {"iter": done, "lr": lr, "s_per_iter": round(sec, 4),
                   **{k: round(v.item(), 5) for k, v in out.items()}}
            with open(scalars, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            log(f"iter {done}/{sched.iters}  loss {row['loss']:.3f}  global {row['global_loss']:.3f}  "
                f"local {row['local_loss']:.3f}  local_inv {row['local_inv']:.4f}  local_var {row['local_var']:.4f}  "
                f"feat_std {row['feat_std']:.4f}  lr {lr:.2e}  {sec:.2f} s/iter")
        if done % sched.checkpoint_interval == 0 or done == sched.iters:
            _save(latest, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iter": done,
                           "run_config": _run_config(cfg)})
    out_path = work_dir / "backbone.pth"
    meta = {"method": "VICRegL (dense VICReg on exact view correspondences)", "iters": int(sched.iters),
            "images": names, "scale": float(cfg.data.get("scale", 1.0)), "seed": int(cfg.seed),
            "run_config": _run_config(cfg)}
    _save(out_path, {"state_dict": model.backbone.state_dict(), "meta": meta})
    log(f"wrote {out_path}")
    return out_path
