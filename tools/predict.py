"""Segment glands in any H&E images with a trained checkpoint (whole-image slide inference).

    python tools/predict.py CONFIG CHECKPOINT INPUT [INPUT ...] --out DIR [--tta] [--tta-ratios R ...]
                            [--device cpu|cuda] [--fill-holes AREA]

INPUT is an image file or a folder of images. Writes ``DIR/masks/NAME.png`` (0/255 gland mask)
and ``DIR/overlays/NAME.png`` (gland tinted green over the image). Without ``--tta`` each image
goes through the config's ``test_pipeline`` once (1x); ``--tta`` sends it through the config's
``tta_pipeline`` (the same ``TestTimeAug`` that ``tools/test.py --tta`` uses: every scale ratio,
with and without horizontal flip, softmax averaged by ``SegTTAModel``); ``--tta-ratios`` replaces
the config's ratios. ``--fill-holes AREA`` (opt-in, not in the paper) fills holes smaller than AREA
pixels in each mask with SPM's own interior rule (``SPM.select.remove_small_holes``; SPM uses 15000):
the model marks the dark epithelial ring of a gland, and the rule adds the pale lumen it encloses,
as SPM does for its proposals. Bad files are reported on one line each and skipped (exit 1); outputs are
written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import MSG  # noqa: F401  (registers MSG and the mmcv.ops stand-in before mmseg loads)
from MSG.compat.safe_globals import check_checkpoint
from MSG.datasets.tta import positive_ratio, with_tta_ratios, without_loading
from SPM.cli import exit_cleanly_on_sigterm, int_at_least
from SPM.io import (
    InputError,
    check_unique_stems,
    is_image_file,
    list_files,
    read_bgr,
    remove_stale_temp_files,
    write_png,
)
from SPM.select import remove_small_holes
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

    if not Path(config).is_file():
        raise InputError(config, "config file not found")
    check_checkpoint(checkpoint)
    return init_model(config, checkpoint, device=device)


class Segmenter:
    """A loaded model plus the config's test (1x) or test-time-augmentation pipeline, for images in memory."""

    def __init__(self, model, tta: bool = False, tta_ratios: list[float] | None = None) -> None:
        from mmengine.dataset import Compose
        from mmseg.registry import MODELS

        cfg = model.cfg
        if tta or tta_ratios:
            pipeline = cfg.tta_pipeline if not tta_ratios else with_tta_ratios(cfg.tta_pipeline, tta_ratios)
            self.runner = MODELS.build(dict(type="SegTTAModel", module=model))
        else:
            pipeline = cfg.test_pipeline
            self.runner = model
        self.pipeline = Compose(without_loading(pipeline))

    def __call__(self, image_bgr: np.ndarray, name: str = "image") -> np.ndarray:
        """Boolean gland mask ``(H, W)`` of one BGR uint8 image ``(H, W, 3)``."""
        from mmengine.dataset import pseudo_collate

        h, w = image_bgr.shape[:2]
        data = self.pipeline(dict(img=image_bgr, img_path=name, img_shape=(h, w), ori_shape=(h, w)))
        with torch.no_grad():
            result = self.runner.test_step(pseudo_collate([data]))[0]
        return (result.pred_sem_seg.data[0] == 1).cpu().numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Whole-image gland segmentation with a trained checkpoint")
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--out", required=True)
    p.add_argument("--tta", action="store_true", help="the config's tta_pipeline (scales x flip, softmax averaged)")
    p.add_argument("--tta-ratios", type=positive_ratio, nargs="+",
                   help="TTA with these scale ratios instead (implies --tta)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--fill-holes", type=int_at_least(1), metavar="AREA",
                   help="fill holes smaller than AREA px in each mask (SPM's interior rule; opt-in)")
    args = p.parse_args(argv)
    exit_cleanly_on_sigterm()
    out = Path(args.out)
    try:
        files = collect_inputs(args.inputs)
        check_unique_stems(files)
        model = load_model(args.config, args.checkpoint, args.device)
        segment = Segmenter(model, args.tta, args.tta_ratios)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for folder in (out / "masks", out / "overlays"):
        remove_stale_temp_files(folder)
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
        gland = segment(image, str(path))
        if args.fill_holes:
            gland = remove_small_holes(gland, args.fill_holes)
        write_png(out / "overlays" / f"{path.stem}.png", overlay_proposal(image, gland.astype(np.uint8) * 2))
        write_png(out / "masks" / f"{path.stem}.png", gland.astype(np.uint8) * 255)
    print(f"predicted {len(files) - failed} images ({failed} failed); masks in {out / 'masks'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
