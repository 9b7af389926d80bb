"""PiCIE command line: train PiCIE on every image of a folder, then write global cluster maps and a gland
pseudo-mask per image.

    python tools/picie.py --train_image_path DIR --output_root work_dirs/picie

Outputs, under ``OUTPUT_ROOT/``:

* ``pseudo_mask/NAME.png``  uint8 0 background / 1 gland: per image, the darkest cluster with more
                            than ``--min_pixels`` pixels (label-free, ``select_gland_cluster`` of SGSCN)
* ``cluster_id/NAME.png``   uint8 cluster ids ``0..k-1``, global over the set, at the input resolution
                            (for ``tools/oracle_eval.py --set-level``)
* ``overlay/NAME.png``      the pseudo-mask tinted green over the image (the file to look at)
* ``summary.csv``           one row per image
* ``checkpoint.pth``        ``{"state_dict", "centroids", "config"}``

Images are downscaled by ``--scale`` for training and inference (a CPU budget); the cluster maps are
upsampled back to the input size. Method and differences from the original: :mod:`baselines.picie`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines.picie import BALANCE_MODES, PiCIEConfig, cluster_images, train_picie
from baselines.sgscn import select_gland_cluster
from common.batch import ImageOutcome, run_image_batch
from common.cli import exit_cleanly_on_sigterm, int_at_least, positive_float, resolve_device
from common.hardware import keep_freed_memory
from common.io import (
    InputError,
    merge_summary,
    prepare_batch,
    read_bgr,
    write_png,
)
from MSG.backbones.wide_res38 import check_pretrained_checkpoint
from SPM.visualize import overlay_proposal

SUMMARY_FIELDS = ("image", "status", "height", "width", "selected_cluster", "cluster_mean_gray",
                  "gland_fraction", "clusters_present", "warnings")
OUTPUTS = ("pseudo_mask", "cluster_id", "overlay")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="PiCIE (Cho et al., CVPR 2021): clustering with invariance and "
                                            "equivariance, trained from scratch on a folder of images")
    p.add_argument("--train_image_path", required=True, help="folder of H&E images (.bmp .png .tif .jpg)")
    p.add_argument("--output_root", default="work_dirs/picie", help="output folder")
    p.add_argument("--k", type=int_at_least(2), default=5, help="number of clusters (at most 256)")
    p.add_argument("--dim", type=int_at_least(1), default=128, help="feature dimension")
    p.add_argument("--epochs", type=int_at_least(1), default=10)
    p.add_argument("--width_mult", type=positive_float, default=0.25, help="WideRes38 width multiplier")
    p.add_argument("--scale", type=positive_float, default=0.5, help="downscale images by this first")
    p.add_argument("--backbone_checkpoint", type=Path, metavar="PATH",
                   help="start the backbone from this backbone.pth of tools/pretrain.py (same --width_mult); "
                        "default: from scratch")
    p.add_argument("--crop", type=int_at_least(8), default=256, help="side of the square training crop")
    p.add_argument("--batch", type=int_at_least(1), default=8)
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (the original's 1e-3)")
    p.add_argument("--min_scale", type=positive_float, default=0.5, help="smallest relative crop of the "
                   "equivariance transform")
    p.add_argument("--v_flip", action="store_true", help="also random vertical flips (the original: h-flip only)")
    p.add_argument("--balance", choices=BALANCE_MODES, default="original",
                   help="CE cluster weights: original (proportional to size, as the code), inverse, none")
    p.add_argument("--kmeans_iters", type=int_at_least(1), default=20)
    p.add_argument("--min_pixels", type=int_at_least(0), default=10000,
                   help="the gland cluster must have more pixels than this (at the input resolution)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    args = p.parse_args(argv)
    if args.k > 256:
        p.error("--k must be at most 256 (uint8 cluster maps)")
    if args.min_scale > 1:
        p.error("--min_scale must be in (0, 1]")
    return args


def check_backbone(path: Path, width_mult: float) -> None:
    """Refuse, before any work, a backbone checkpoint that is missing, unreadable or does not fit the
    WideRes38 of ``width_mult`` (another width, or not a backbone at all)."""
    check_pretrained_checkpoint(path, network=f"--width_mult {width_mult:g}", width_mult=width_mult)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    keep_freed_memory()
    root = Path(args.output_root)
    out = {k: root / k for k in OUTPUTS}
    try:
        device = resolve_device(args.device, 0)
        if args.backbone_checkpoint is not None:
            check_backbone(args.backbone_checkpoint, args.width_mult)
        files = prepare_batch(args.train_image_path, [root, *out.values()])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    paths, originals, scaled, rows = [], [], [], []
    n_failed = 0
    for path in files:
        try:
            image, notes = read_bgr(path)
            h, w = image.shape[:2]
            sh, sw = max(8, round(h * args.scale)), max(8, round(w * args.scale))
            small = image if (sh, sw) == (h, w) else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            rows.append({"image": path.stem, "status": "failed", "warnings": str(err)})
            n_failed += 1
            continue
        for note in notes:
            print(f"warning: {path}: {note}", file=sys.stderr)
        paths.append(path)
        originals.append(image)
        scaled.append(small)
    if not scaled:
        print(f"error: {args.train_image_path}: no readable images", file=sys.stderr)
        return 1

    cfg = PiCIEConfig(k=args.k, dim=args.dim, epochs=args.epochs, width_mult=args.width_mult,
                      backbone_checkpoint=None if args.backbone_checkpoint is None else str(args.backbone_checkpoint),
                      crop=args.crop,
                      batch=args.batch, lr=args.lr, seed=args.seed, kmeans_iters=args.kmeans_iters,
                      min_scale=args.min_scale, vflip=args.v_flip, balance=args.balance, device=str(device))
    start = time.perf_counter()
    try:
        model, centroids = train_picie(scaled, cfg, log=lambda line: print(line, flush=True))
    except ValueError as err:  # e.g. fewer feature vectors than clusters
        print(f"error: {args.train_image_path}: {err}", file=sys.stderr)
        return 1
    torch.save({"state_dict": model.state_dict(), "centroids": centroids.cpu(),
                "config": dataclasses.asdict(cfg)}, root / "checkpoint.pth")
    summary = root / "summary.csv"
    summary.unlink(missing_ok=True)  # PiCIE clusters the whole set: a rerun replaces every row
    merge_summary(summary, rows, SUMMARY_FIELDS)  # the images that could not be read
    readable = {p.stem: (p, image, small) for p, image, small in zip(paths, originals, scaled, strict=True)}

    def infer(path: Path, status) -> ImageOutcome:
        _, image, small = readable[path.stem]
        labels = cluster_images(model, [small], centroids, sizes=[image.shape[:2]])[0]
        sel = select_gland_cluster(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), labels, args.min_pixels)
        mask = labels == sel.cluster
        write_png(out["cluster_id"] / f"{path.stem}.png", labels.astype(np.uint8))
        write_png(out["overlay"] / f"{path.stem}.png", overlay_proposal(image, mask.astype(np.uint8) * 2))
        write_png(out["pseudo_mask"] / f"{path.stem}.png", mask.astype(np.uint8))
        return ImageOutcome({"height": labels.shape[0], "width": labels.shape[1], "selected_cluster": sel.cluster,
                             "cluster_mean_gray": f"{sel.mean_gray:.3f}", "gland_fraction": f"{mask.mean():.5f}",
                             "clusters_present": len(np.unique(labels))}, [sel.warning] if sel.warning else [])

    counts = run_image_batch([v[0] for v in readable.values()], infer,
                             lambda name: out["pseudo_mask"] / f"{name}.png", summary, SUMMARY_FIELDS)
    print(f"PiCIE {counts.done} done, {n_failed + counts.failed} failed of {len(files)} files in "
          f"{time.perf_counter() - start:.1f} s; pseudo-masks in {out['pseudo_mask']}, summary in {summary}")
    return 1 if n_failed or counts.failed else 0

if __name__ == "__main__":
    sys.exit(main())
