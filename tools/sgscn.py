"""SGSCN command line: cluster every image of a folder and turn the clusters into a gland pseudo-mask.

    python tools/sgscn.py --train_image_path DIR --output_root work_dirs/sgscn

Outputs, under ``OUTPUT_ROOT/``:

* ``pseudo_mask/NAME.png``   uint8 0 background / 1 gland: the darkest cluster with more than
                             ``--min_pixels`` pixels (label-free; a proposal map for MSG, 1 = gland)
* ``cluster_id/NAME.png``    the raw cluster ids (argmax channels; uint8, uint16 above 256 channels),
                             the input of ``tools/oracle_eval.py``
* ``cluster_label/NAME.png`` colour map of the clusters
* ``overlay/NAME.png``       the pseudo-mask tinted green over the image (the file to look at)
* ``summary.csv``            one row per image (status, clusters, iterations run, selected cluster,
                             gland fraction, seconds, warnings)

Method and differences from the original code: :mod:`baselines.sgscn`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from baselines.sgscn import SGSCNConfig, SGSCNTrainer, select_gland_cluster
from common.batch import ImageOutcome, run_image_batch
from common.cli import exit_cleanly_on_sigterm, int_at_least, resolve_device
from common.hardware import keep_freed_memory
from common.io import (
    InputError,
    prepare_batch,
    read_bgr,
    write_png,
)
from SPM.pipeline import image_to_tensor
from SPM.visualize import colorize_clusters, overlay_proposal

SUMMARY_FIELDS = (
    "image", "status", "height", "width", "n_clusters", "iterations", "selected_cluster",
    "cluster_mean_gray", "gland_fraction", "seconds", "warnings",
)
OUTPUTS = ("pseudo_mask", "cluster_id", "cluster_label", "overlay")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SGSCN (Ahn et al., MICCAI 2021): per-image self-supervised clustering")
    p.add_argument("--train_image_path", required=True, help="folder of H&E images (.bmp .png .tif .jpg)")
    p.add_argument("--output_root", default="work_dirs/sgscn", help="output folder")
    p.add_argument("--nChannel", type=int_at_least(2), default=100, help="channels of CSNet (= most clusters)")
    p.add_argument("--nConv", type=int_at_least(1), default=2, help="number of 3x3 conv blocks in CSNet")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--maxIter", type=int_at_least(1), default=50, help="most optimisation steps per image")
    p.add_argument("--minLabels", type=int_at_least(0), default=3,
                   help="stop after the step whose forward had at most this many distinct labels (0: never)")
    p.add_argument("--stepsize_ce", type=float, default=1.0, help="weight of the argmax CE loss")
    p.add_argument("--stepsize_con", "--stepsize_ss", dest="stepsize_con", type=float, default=5.0,
                   help="weight of the spatial continuity loss (the original's --stepsize_ss)")
    p.add_argument("--no-center", dest="center", action="store_false",
                   help="without the centre (context-based consistency) loss, the original script's default")
    p.add_argument("--center-softmax", action="store_true",
                   help="variant: centre loss on a per-channel softmax over pixels instead of (o + 1e-3) / sum")
    p.add_argument("--min_pixels", type=int_at_least(0), default=10000,
                   help="the gland cluster must have more pixels than this")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seeds each image's CSNet init (the original was unseeded)")
    p.add_argument("--exact", action="store_true", help="fp32 eager reference path (default: bf16 where native)")
    p.add_argument("--skip_existing", action="store_true",
                   help="skip images whose pseudo_mask already exists (resume a run)")
    args = p.parse_args(argv)
    if args.center_softmax and not args.center:
        p.error("--center-softmax needs the centre loss (drop --no-center)")
    return args


def compact_ids(labels: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered 0..k-1 in id order (distinct colours for the first 15 clusters)."""
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    keep_freed_memory()
    root = Path(args.output_root)
    out = {k: root / k for k in OUTPUTS}
    try:
        device = resolve_device(args.device, 0)
        files = prepare_batch(args.train_image_path, [root, *out.values()])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    cfg = SGSCNConfig(
        n_channels=args.nChannel, n_conv=args.nConv, max_iter=args.maxIter, min_labels=args.minLabels,
        lr=args.lr, stepsize_ce=args.stepsize_ce, stepsize_con=args.stepsize_con,
        center=args.center, center_softmax=args.center_softmax,
    )
    trainer = SGSCNTrainer(cfg, device, exact=args.exact)
    id_dtype = np.uint8 if cfg.n_channels <= 256 else np.uint16
    summary = root / "summary.csv"

    def cluster(path: Path, status) -> ImageOutcome:
        def on_step(it: int, loss: float, n_labels: int) -> None:
            status(f"step {it + 1}/{cfg.max_iter} loss {loss:.3f} labels {n_labels}")

        name = path.stem
        image, notes = read_bgr(path)
        result = trainer.fit(image_to_tensor(image), seed=args.seed, on_step=on_step)
        labels = result.labels
        selection = select_gland_cluster(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), labels, args.min_pixels)
        mask = labels == selection.cluster
        write_png(out["cluster_id"] / f"{name}.png", labels.astype(id_dtype))
        write_png(out["cluster_label"] / f"{name}.png", colorize_clusters(compact_ids(labels)))
        write_png(out["overlay"] / f"{name}.png", overlay_proposal(image, mask.astype(np.uint8) * 2))
        write_png(out["pseudo_mask"] / f"{name}.png", mask.astype(np.uint8))  # last: marks the image as done
        return ImageOutcome({
            "height": labels.shape[0], "width": labels.shape[1], "n_clusters": len(np.unique(labels)),
            "iterations": result.iterations, "selected_cluster": selection.cluster,
            "cluster_mean_gray": f"{selection.mean_gray:.3f}", "gland_fraction": f"{mask.mean():.5f}",
        }, notes + result.warnings + ([selection.warning] if selection.warning else []))

    start = time.perf_counter()
    counts = run_image_batch(files, cluster, lambda name: out["pseudo_mask"] / f"{name}.png", summary,
                             SUMMARY_FIELDS, skip_existing=args.skip_existing)
    print(f"SGSCN {counts.done} done, {counts.skipped} skipped, {counts.failed} failed of {counts.files} files in "
          f"{time.perf_counter() - start:.1f} s; pseudo-masks in {out['pseudo_mask']}, summary in {summary}")
    return counts.exit_code

if __name__ == "__main__":
    sys.exit(main())
