"""Test-time augmentation: choose a cheaper CPU protocol without labels, and check the whole-image
path against OEEM's patch path.

    # label-free choice: agreement of cheaper ratio sets with the full 8-ratio protocol on train images
    python bench/tta_protocol.py choose CONFIG CHECKPOINT ../shared/data/glas/train/images --num 8
    # whole image vs OEEM patches (256/192, softmax averaged back) on a few images with masks
    python bench/tta_protocol.py paths CONFIG CHECKPOINT glas/testA/images --masks glas/testA/masks --num 3

``choose`` runs every image once at each of the eight OEEM ratios (``--ratios``) with and without
flip, keeps each ratio's flip-averaged softmax, and scores every subset of up to three ratios (with
flip) by its cost (``2 * sum r^2`` 1x passes) and its pixel agreement with the full protocol's
prediction. It reads no mask. The rule, fixed before looking: among subsets costing at most a
quarter of the full protocol, the one with the highest mean agreement.

``paths`` predicts each image with the full protocol twice: on the whole image (what
``tools/test.py --tta`` does) and OEEM's way (256x256 patches at stride 192, each through the same
TTA, softmax maps averaged where patches overlap), and prints both pooled mIoUs and their agreement.
The per-augmentation maps come from ``model.test_step`` on the pipeline's own transforms; the
whole-image result is checked against ``SegTTAModel`` (tools/predict.py --tta) first.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common.io import find_ground_truth, is_image_file, list_files, read_bgr, read_mask
from common.tiles import crop_tiles, pad_to
from evaluation.pixel import PooledCounts
from MSG.apis import Segmenter, load_model
from MSG.datasets.tta import OEEM_RATIOS, tta_cost, with_tta_ratios, without_loading

ROOT = Path(__file__).resolve().parents[1]


def per_ratio_probabilities(model, image: np.ndarray, ratios: list[float]) -> np.ndarray:
    """``(len(ratios), C, H, W)``: for each ratio, the softmax averaged over no-flip and flip."""
    from mmengine.dataset import Compose, pseudo_collate

    h, w = image.shape[:2]
    out = []
    for ratio in ratios:
        pipeline = Compose(without_loading(with_tta_ratios(model.cfg.tta_pipeline, [ratio])))
        data = pipeline(dict(img=image, img_path="x", img_shape=(h, w), ori_shape=(h, w)))
        probs = 0
        for inputs, sample in zip(data["inputs"], data["data_samples"], strict=True):
            with torch.no_grad():
                result = model.test_step(pseudo_collate([dict(inputs=inputs, data_samples=sample)]))[0]
            probs = probs + result.seg_logits.data.float().softmax(0)
        out.append((probs / len(data["inputs"])).cpu().numpy())
    return np.stack(out)


def images_of(folder: Path, num: int) -> list[Path]:
    return [p for p in list_files(folder) if is_image_file(p)][:num]


def choose(model, files: list[Path], ratios: list[float]) -> int:
    full_cost = tta_cost(ratios)
    per_image = []
    start = time.perf_counter()
    for path in files:
        image, _ = read_bgr(path)
        per_image.append(per_ratio_probabilities(model, image, ratios))
    print(f"{len(files)} images, all {len(ratios)} ratios x 2 flips in {time.perf_counter() - start:.0f} s")
    rows = []
    for size in (1, 2, 3):
        for subset in itertools.combinations(range(len(ratios)), size):
            agree = [float((p[list(subset)].mean(0).argmax(0) == p.mean(0).argmax(0)).mean()) for p in per_image]
            gland = [float((p[list(subset)].mean(0).argmax(0) == 1).mean()) for p in per_image]
            rows.append(([ratios[i] for i in subset], tta_cost([ratios[i] for i in subset]), np.mean(agree),
                         np.mean(gland)))
    full_gland = np.mean([float((p.mean(0).argmax(0) == 1).mean()) for p in per_image])
    print(f"full protocol {ratios}: cost {full_cost:.1f}x, gland fraction {full_gland:.4f}")
    print(f"{'ratios':<22} {'cost':>6} {'agree':>8} {'gland':>7}")
    for subset, cost, agree, gland in sorted(rows, key=lambda r: (r[1], -r[2])):
        print(f"{'-'.join(f'{r:g}' for r in subset):<22} {cost:>5.1f}x {agree:>8.4f} {gland:>7.4f}")
    budget = [r for r in rows if r[1] <= full_cost / 4]
    best = max(budget, key=lambda r: (r[2], -r[1]))
    print(f"chosen (cost <= {full_cost / 4:.1f}x, highest agreement): ratios {best[0]} + flip, cost {best[1]:.1f}x "
          f"({100 * best[1] / full_cost:.0f}% of the full protocol), agreement {best[2]:.4f}")
    return 0


def patch_probabilities(model, image: np.ndarray, ratios: list[float], crop: int = 256, stride: int = 192):
    """OEEM's patch path: mean of the full-TTA softmax of overlapping ``crop`` patches."""
    h, w = image.shape[:2]
    tiles = crop_tiles(image, crop, stride, 0)
    ph, pw = pad_to(image, crop, crop, 0).shape[:2]
    total = np.zeros((2, ph, pw), np.float32)
    count = np.zeros((ph, pw), np.float32)
    for (y, x), tile in tiles.items():
        total[:, y:y + crop, x:x + crop] += per_ratio_probabilities(model, np.ascontiguousarray(tile), ratios).mean(0)
        count[y:y + crop, x:x + crop] += 1
    return (total / count)[:, :h, :w]


def paths(model, files: list[Path], masks: Path, ratios: list[float]) -> int:
    whole_counts, patch_counts, agreement = PooledCounts(), PooledCounts(), []
    reference = Segmenter(model, tta_ratios=ratios)
    for path in files:
        image, _ = read_bgr(path)
        gt = read_mask(find_ground_truth(masks, path.stem)) > 0
        t0 = time.perf_counter()
        whole = per_ratio_probabilities(model, image, ratios).mean(0).argmax(0) == 1
        t1 = time.perf_counter()
        patch = patch_probabilities(model, image, ratios).argmax(0) == 1
        t2 = time.perf_counter()
        same_as_tta_model = float((whole == reference(image, str(path))).mean())
        whole_counts.update(whole, gt)
        patch_counts.update(patch, gt)
        agreement.append(float((whole == patch).mean()))
        print(f"{path.name}: whole {t1 - t0:.1f} s, patches {t2 - t1:.1f} s, pixel agreement {agreement[-1]:.4f}, "
              f"whole == SegTTAModel on {100 * same_as_tta_model:.2f}% of pixels")
    diff = 100 * (whole_counts.miou() - patch_counts.miou())
    print(f"{len(files)} images, ratios {ratios} + flip: pooled mIoU whole image {whole_counts.miou():.4f}, "
          f"OEEM patches {patch_counts.miou():.4f} (difference {diff:+.2f} points), "
          f"mean pixel agreement {np.mean(agreement):.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["choose", "paths"])
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("images", type=Path)
    p.add_argument("--masks", type=Path, help="ground truth (paths mode only)")
    p.add_argument("--num", type=int, default=8)
    p.add_argument("--ratios", type=float, nargs="+", default=list(OEEM_RATIOS), help="the full protocol")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    model = load_model(args.config, args.checkpoint, args.device)
    files = images_of(args.images, args.num)
    if args.mode == "choose":
        return choose(model, files, args.ratios)
    if args.masks is None:
        p.error("paths needs --masks")
    return paths(model, files, args.masks, args.ratios)


if __name__ == "__main__":
    sys.exit(main())
