"""Inference throughput of a model: megapixels per second of whole-image prediction (``tools/predict.py``'s
path) and of the whole-slide tool, at 1x and with the config's test-time augmentation, in one run.

    python bench/predict_speed.py [--model weights/mssg_glas.pth] [--images DIR --num 8]
                                  [--slide-size 3200 2400 --tile 1024 --batch 4] [--device cpu]

Images: the first ``--num`` of ``--images`` (GlaS testA beside the project when present, else synthetic
775 x 522 tiles); the slide: a synthetic pyramidal TIFF at 0.62 µm/px. Megapixels count the input
pixels (the slide's tissue tiles only, glass skipped).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import MSG  # noqa: F401  (registers MSG and the mmcv.ops stand-in before mmseg loads)
from common.cli import resolve_device
from common.hardware import add_allocator_option, cpu_description, keep_freed_memory
from common.io import is_image_file, list_files, read_bgr
from common.synthetic import make_synthetic_image, make_synthetic_slide
from MSG.apis import Segmenter, load_model
from wsi import SlideSettings, segment_slide
from wsi.writers import write_pyramid_tiff

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "glas" / "testA" / "images"


def images_for(args: argparse.Namespace) -> tuple[list[np.ndarray], str]:
    if args.images.is_dir():
        files = [f for f in list_files(args.images) if is_image_file(f)][: args.num]
        return [read_bgr(f)[0] for f in files], f"{len(files)} images of {args.images}"
    rng = np.random.default_rng(0)
    return [make_synthetic_image(rng, 522, 775)[0] for _ in range(args.num)], f"{args.num} synthetic 775x522 images"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "weights" / "mssg_glas.pth")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    p.add_argument("--num", type=int, default=8)
    p.add_argument("--slide-size", type=int, nargs=2, default=(3200, 2400), metavar=("WIDTH", "HEIGHT"))
    p.add_argument("--tile", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", default="cpu")
    add_allocator_option(p)
    args = p.parse_args(argv)
    if not args.glibc_malloc:
        keep_freed_memory()
    device = resolve_device(args.device, 0)
    model = load_model(None, args.model, str(device))
    images, what = images_for(args)
    hardware = torch.cuda.get_device_name() if device.type == "cuda" else cpu_description()
    print(f"{args.model.name} on {hardware}, torch {torch.__version__}, {torch.get_num_threads()} threads; {what}")
    megapixels = sum(im.shape[0] * im.shape[1] for im in images) / 1e6
    for tta in (False, True):
        segment = Segmenter(model, tta)
        segment(images[0])  # warm-up
        start = time.perf_counter()
        for image in images:
            segment(image)
        seconds = time.perf_counter() - start
        print(f"whole images, {'TTA' if tta else '1x '}: {megapixels / seconds:.3f} MP/s "
              f"({seconds / len(images):.2f} s per image)", flush=True)
    width, height = args.slide_size
    rgb, _ = make_synthetic_slide(np.random.default_rng(1), height, width)
    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.tif"
        write_pyramid_tiff(slide, rgb, 0.62)
        for tta in (False, True):
            segment = Segmenter(model, tta)

            def predict(tiles: list[np.ndarray], segment: Segmenter = segment) -> list[np.ndarray]:
                probs = segment.probabilities_batch([np.ascontiguousarray(t[..., ::-1]) for t in tiles])
                return [prob[1] for prob in probs]

            start = time.perf_counter()
            row = segment_slide(slide, predict, Path(tmp) / f"out{int(tta)}",
                                SlideSettings(target_mpp=0.62, tile=args.tile, overlap=128), batch=args.batch)
            seconds = time.perf_counter() - start
            tile_mp = row["tissue_tiles"] * min(args.tile, width) * min(args.tile, height) / 1e6
            print(f"whole slide {width}x{height} ({row['tissue_tiles']} of {row['tiles']} tiles of {args.tile} px "
                  f"with tissue, batch {args.batch}), {'TTA' if tta else '1x '}: {width * height / 1e6 / seconds:.3f} "
                  f"MP/s of slide, {tile_mp / seconds:.3f} MP/s of tiles ({seconds:.1f} s, outputs included)",
                  flush=True)
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
