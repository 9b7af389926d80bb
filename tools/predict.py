"""Segment glands in any H&E images with a trained checkpoint (whole-image slide inference).

    python tools/predict.py [CONFIG] CHECKPOINT INPUT [INPUT ...] --out DIR [--tta] [--tta-ratios R ...]
                            [--device cpu|cuda] [--fill-holes AREA] [--probabilities]

CHECKPOINT alone is enough for checkpoints written by ``tools/train.py`` (the config travels in their
meta); ``CONFIG CHECKPOINT`` uses the given config instead. INPUT is an image file or a folder of
images. Writes ``DIR/masks/NAME.png`` (0/255 gland mask) and ``DIR/overlays/NAME.png`` (gland tinted
green over the image); ``--probabilities`` also writes ``DIR/probabilities/NAME.png``, the gland
probability in 8 bits (``p = value / 255``: a heat map, or the input of ``tools/calibration.py``).
Without ``--tta`` each image goes through the config's ``test_pipeline`` once;
``--tta`` sends it through the config's ``tta_pipeline`` (every scale ratio, with and without
horizontal flip, softmax averaged by ``SegTTAModel``, as ``tools/test.py --tta``); ``--tta-ratios``
replaces the config's ratios (scale factors of the input image). ``--fill-holes AREA`` (opt-in, not in
the paper) fills holes smaller than AREA pixels in each mask with SPM's interior rule (the probability
map stays the model's). Bad files are reported on one line each and skipped (exit 1); a checkpoint
whose weights do not fit the model or hold NaN is refused (exit 2); outputs are written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from mmengine.config import DictAction
from tqdm import tqdm

import MSG  # noqa: F401  (registers MSG and the mmcv.ops stand-in before mmseg loads)
from common.cli import exit_cleanly_on_sigterm, int_at_least, resolve_device
from common.hardware import keep_freed_memory
from common.io import (
    InputError,
    check_unique_stems,
    check_writable,
    collect_files,
    is_image_file,
    probability_to_uint8,
    read_bgr,
    remove_stale_temp_files,
    write_png,
)
from common.morphology import remove_small_holes
from MSG.apis import Segmenter, load_model, split_model_positionals
from MSG.datasets.tta import positive_ratio
from SPM.visualize import overlay_proposal


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Whole-image gland segmentation with a trained checkpoint")
    p.add_argument("positionals", nargs="+", metavar="[CONFIG] CHECKPOINT INPUT",
                   help="optional config, the checkpoint, then image files and/or folders")
    p.add_argument("--out", required=True)
    p.add_argument("--tta", action="store_true", help="the config's tta_pipeline (scales x flip, softmax averaged)")
    p.add_argument("--tta-ratios", type=positive_ratio, nargs="+",
                   help="TTA with these scale ratios of the input image instead (implies --tta)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, default=None,
                   help="override settings of the model's config, key=value (e.g. model.test_cfg.stride=[96,96])")
    p.add_argument("--fill-holes", type=int_at_least(1), metavar="AREA",
                   help="fill holes smaller than AREA px in each mask (SPM's interior rule; opt-in)")
    p.add_argument("--probabilities", action="store_true",
                   help="also write DIR/probabilities/NAME.png: the gland probability x 255 (8 bits)")
    args = p.parse_args(argv)
    exit_cleanly_on_sigterm()
    keep_freed_memory()
    out = Path(args.out)
    try:
        config, checkpoint, inputs = split_model_positionals(args.positionals)
        files = collect_files(inputs, is_image_file)
        if not files:
            raise InputError(" ".join(inputs), "no images found (.png, .jpg, .tif, .bmp)")
        check_unique_stems(files)
        for folder in (out / "masks", out / "overlays", *([out / "probabilities"] if args.probabilities else [])):
            check_writable(folder)
            remove_stale_temp_files(folder)
        model = load_model(config, checkpoint, str(resolve_device(args.device)), args.cfg_options)
        segment = Segmenter(model, args.tta, args.tta_ratios)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = 0
    for path in tqdm(files, disable=None, dynamic_ncols=True, unit="img"):
        try:
            image, warnings = read_bgr(path)
        except InputError as err:
            tqdm.write(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        for w in warnings:
            tqdm.write(f"warning: {path}: {w}", file=sys.stderr)
        probability = None
        if args.probabilities:
            gland, probs = segment.mask_and_probabilities(image, str(path))
            probability = probability_to_uint8(probs[1])
        else:
            gland = segment(image, str(path))
        if args.fill_holes:
            gland = remove_small_holes(gland, args.fill_holes)
        try:
            write_png(out / "overlays" / f"{path.stem}.png", overlay_proposal(image, gland.astype(np.uint8) * 2))
            write_png(out / "masks" / f"{path.stem}.png", gland.astype(np.uint8) * 255)
            if probability is not None:
                write_png(out / "probabilities" / f"{path.stem}.png", probability)
        except OSError as err:
            print(f"error: {out}: cannot write outputs ({err.strerror or err})", file=sys.stderr)
            return 2
    print(f"predicted {len(files) - failed} images ({failed} failed); masks in {out / 'masks'}")
    return 1 if failed else 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
