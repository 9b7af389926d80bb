"""Segment glands in any H&E images with a trained checkpoint (whole-image slide inference).

    python tools/predict.py CONFIG CHECKPOINT INPUT [INPUT ...] --out DIR [--tta] [--device cpu|cuda]

INPUT is an image file or a folder of images. Writes ``DIR/masks/NAME.png`` (0/255 gland mask)
and ``DIR/overlays/NAME.png`` (gland tinted green over the image). ``--tta`` averages the
class probabilities of the image and its horizontal flip. Bad files are reported on one line each
and skipped (exit 1); outputs are written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import MSG  # noqa: F401  (registers MSG and the mmcv.ops stand-in before mmseg loads)
from MSG.compat.safe_globals import allow_mmengine_checkpoints
from SPM.io import InputError, is_image_file, list_files, read_bgr, write_png
from SPM.visualize import overlay_proposal


def collect_inputs(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(f for f in list_files(path) if is_image_file(f))
        else:
            files.append(path)
    return files


def load_model(config: str, checkpoint: str, device: str):
    from mmseg.apis import init_model

    for path in (config, checkpoint):
        if not Path(path).is_file():
            raise InputError(path, "file not found")
    allow_mmengine_checkpoints()
    return init_model(config, checkpoint, device=device)


def predict_probabilities(model, image_bgr: np.ndarray, tta: bool = False) -> torch.Tensor:
    """Class probabilities ``(num_classes, H, W)`` of one BGR uint8 image (model's test_cfg: slide/whole)."""
    from mmseg.structures import SegDataSample

    def run(img: np.ndarray) -> torch.Tensor:
        h, w = img.shape[:2]
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        data = dict(inputs=[torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))], data_samples=[sample])
        with torch.no_grad():
            result = model.test_step(data)[0]
        return result.seg_logits.data.float().softmax(0).cpu()

    probs = run(image_bgr)
    if tta:
        probs = 0.5 * (probs + run(image_bgr[:, ::-1]).flip(-1))
    return probs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Whole-image gland segmentation with a trained checkpoint")
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--out", required=True)
    p.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    try:
        files = collect_inputs(args.inputs)
        model = load_model(args.config, args.checkpoint, args.device)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    failed = 0
    for path in files:
        try:
            image, warnings = read_bgr(path)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        for w in warnings:
            print(f"warning: {path}: {w}", file=sys.stderr)
        gland = (predict_probabilities(model, image, args.tta).argmax(0) == 1).numpy()
        write_png(out / "overlays" / f"{path.stem}.png", overlay_proposal(image, gland.astype(np.uint8) * 2))
        write_png(out / "masks" / f"{path.stem}.png", gland.astype(np.uint8) * 255)
    print(f"predicted {len(files) - failed} images ({failed} failed); masks in {out / 'masks'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
