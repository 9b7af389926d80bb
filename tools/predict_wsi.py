"""Whole-slide gland segmentation: tile a slide at the model's resolution, blend, and write QuPath-ready glands.

    python tools/predict_wsi.py [CONFIG] CHECKPOINT SLIDE|FOLDER [...] --out DIR [--mpp UM] [--tile 1024]
                                [--overlap 128] [--batch 4] [--tta] [--device auto] [--skip_existing]
                                [--probabilities]

Slides: .svs, .ndpi, .mrxs, .scn, ... through OpenSlide, plain or pyramidal .tif/.tiff through tifffile. The
slide is read at the pyramid level closest to the model's training resolution (the config's ``image_mpp``:
0.62 µm/px for GlaS at 20x) and resampled to it; ``--mpp`` gives the slide's level-0 µm/px when its
metadata lacks or misstates it. Tiles without tissue (Otsu on a low-resolution view) are skipped;
overlapping tiles are blended, so a gland across a tile seam is one gland. Per slide, in ``DIR``:
``<stem>.geojson`` (gland polygons in level-0 px with holes, QuPath's *File > Import objects*),
``<stem>_mask.tif`` (tiled pyramidal 0/255 TIFF at the segmentation resolution), ``<stem>_overlay.png``,
``<stem>.csv`` (glands, gland and tissue area in µm², seconds); ``summary.csv`` lists every slide;
with ``--probabilities`` also ``<stem>_probability.tif``, the blended gland probability in 8 bits
(``p = value / 255``), pyramidal like the mask (a heat map for QuPath).
Finished tiles are kept on disk until the slide is done, so a rerun resumes where one stopped; with
``--skip_existing`` finished slides are skipped. Many slides shard over processes (one GPU each) with
``tools/dist_predict_wsi.sh``. Exit codes: 0 all slides done, 1 some failed (one ``error:`` line each),
2 bad arguments / nothing to do.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import MSG  # noqa: F401  (registers MSG and the mmcv.ops stand-in before mmseg loads)
from common.batch import ImageOutcome, run_image_batch
from common.cli import exit_cleanly_on_sigterm, int_at_least, positive_float, resolve_device
from common.hardware import keep_freed_memory
from common.io import InputError, check_writable, collect_files
from MSG.apis import Segmenter, load_model, split_model_positionals
from wsi import SlideSettings, is_slide_file, segment_slide
from wsi.pipeline import SUMMARY_FIELDS

# GlaS (Warwick-QU) images: 20x, 0.62 µm per pixel; used when a config does not record its image_mpp.
GLAS_MPP = 0.62
BATCH_FIELDS = ("image", "status", *SUMMARY_FIELDS[2:])


def out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError | torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("positionals", nargs="+", metavar="[CONFIG] CHECKPOINT SLIDE",
                   help="optional config, the checkpoint, then slides and/or folders of slides")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--mpp", type=positive_float, help="the slides' level-0 µm per pixel (overrides their metadata)")
    p.add_argument("--tile", type=int_at_least(64), default=1024, help="tile side at the model's resolution (px)")
    p.add_argument("--overlap", type=int_at_least(0), default=128, help="overlap of neighbouring tiles (px)")
    p.add_argument("--batch", type=int_at_least(1), default=4, help="tiles per forward pass")
    p.add_argument("--tta", action="store_true", help="the config's test-time augmentation (scales x flip)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--object-type", choices=("annotation", "detection"), default="annotation",
                   help="QuPath object type of the glands")
    p.add_argument("--skip_existing", action="store_true", help="skip slides whose outputs exist")
    p.add_argument("--keep-tiles", action="store_true", help="keep the per-tile probabilities after a slide")
    p.add_argument("--probabilities", action="store_true",
                   help="also write <stem>_probability.tif: the gland probability x 255, pyramidal (a heat map)")
    args = p.parse_args(argv)
    if 2 * args.overlap > args.tile:
        p.error(f"--overlap {args.overlap} must be at most half of --tile {args.tile}")
    exit_cleanly_on_sigterm()
    keep_freed_memory()
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    try:
        config, checkpoint, inputs = split_model_positionals(args.positionals)
        slides = collect_files(inputs, is_slide_file)
        if not slides:
            raise InputError(" ".join(inputs), "no slides found (" + ", ".join(sorted({".svs", ".ndpi", ".mrxs",
                                                                                      ".tif", ".tiff"})) + ", ...)")
        check_writable(args.out)
        device = resolve_device(args.device, local_rank)
        model = load_model(config, checkpoint, str(device))
        segmenter = Segmenter(model, args.tta)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if device.type == "cpu" and world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    image_mpp = float(model.cfg.get("image_mpp", GLAS_MPP))
    settings = SlideSettings(target_mpp=image_mpp, tile=args.tile, overlap=args.overlap, mpp=args.mpp,
                             model=f"{Path(checkpoint).name}:{Path(checkpoint).stat().st_size}", tta=args.tta,
                             object_type=args.object_type)

    def process(path: Path, status) -> ImageOutcome:
        bar = tqdm(total=0, disable=None, dynamic_ncols=True, unit="tile", leave=False, position=rank + world)

        def predict(tiles: list[np.ndarray]) -> list[np.ndarray]:
            try:
                probs = segmenter.probabilities_batch([np.ascontiguousarray(t[..., ::-1]) for t in tiles])
            except (RuntimeError, MemoryError) as err:
                if out_of_memory(err):
                    raise InputError(path, f"tiles of {args.tile} px in batches of {args.batch} do not fit in "
                                           "memory; use a smaller --tile or --batch") from None
                raise
            return [prob[1] for prob in probs]

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            row = segment_slide(path, predict, args.out, settings, batch=args.batch, keep_tiles=args.keep_tiles,
                                probabilities=args.probabilities, progress=progress)
        finally:
            bar.close()
        return ImageOutcome({k: row[k] for k in SUMMARY_FIELDS[2:-2]})

    counts = run_image_batch(slides, process, lambda name: args.out / f"{name}.csv", args.out / "summary.csv",
                             BATCH_FIELDS, skip_existing=args.skip_existing, rank=rank, world=world,
                             accept=is_slide_file, kind="slide", unit="slide")
    who = f"rank {rank}/{world}: " if world > 1 else ""
    print(f"predict_wsi {who}{counts.done} done, {counts.skipped} skipped, {counts.failed} failed of "
          f"{counts.files} slides; outputs in {args.out}")
    return counts.exit_code


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
