"""A results montage for a person to look at: one row per image, one column per method.

    python tools/make_figure.py --images glas/testA/images --names testA_1 testA_5 testA_9 \
        --column proposal=work_dirs/spm_glas_testA/cluster_5_nConv_3/gland_proposal \
        --column CE=work_dirs/ablation/ce/pred_tta/masks --column MSSG=work_dirs/ablation/msg/pred_tta/masks \
        --column "ground truth=glas/testA/masks" --out docs/results.png [--width 240]

The first column is the image; every other column tints that column's map over it (0/1/2 proposal
maps: border red, interior green; masks: gland green). Each panel is downscaled to ``--width`` pixels,
a label row names the columns, and the PNG is written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from common.io import InputError, find_ground_truth, read_bgr, read_mask_for, write_png
from common.proposals import BORDER, INTERIOR
from SPM.visualize import overlay_proposal


def as_overlay_map(raw: np.ndarray) -> np.ndarray:
    """A 0/1/2 proposal map stays as it is; any other map (a 0/255 mask, instance ids) -> gland = interior."""
    if set(np.unique(raw).tolist()) <= {0, BORDER, INTERIOR} and raw.max() == INTERIOR:
        return raw
    return np.where(raw > 0, INTERIOR, 0).astype(np.uint8)


def panel(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def label_bar(texts: list[str], width: int) -> np.ndarray:
    bar = np.full((24, width * len(texts), 3), 255, np.uint8)
    for i, text in enumerate(texts):
        cv2.putText(bar, text, (i * width + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def montage(images: Path, names: list[str], columns: list[tuple[str, Path]], width: int) -> np.ndarray:
    rows = []
    for name in names:
        matches = sorted(images.glob(f"{name}.*"))
        if not matches:
            raise InputError(images / name, "no image of this name")
        image, _ = read_bgr(matches[0])
        tiles = [panel(image, width)]
        for _, folder in columns:
            raw = read_mask_for(find_ground_truth(folder, name), image.shape, "no map for this image")
            tiles.append(panel(overlay_proposal(image, as_overlay_map(raw)), width))
        height = min(t.shape[0] for t in tiles)
        rows.append(np.concatenate([t[:height] for t in tiles], axis=1))
    width_all = min(r.shape[1] for r in rows)
    body = np.concatenate([r[:, :width_all] for r in rows], axis=0)
    return np.concatenate([label_bar(["image", *[c for c, _ in columns]], width), body], axis=0)


def parse_column(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER, got {text!r}")
    return label, Path(folder)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--names", nargs="+", required=True, help="image stems, one row each")
    p.add_argument("--column", type=parse_column, action="append", required=True, help="LABEL=FOLDER of maps")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--width", type=int, default=240, help="panel width in pixels")
    args = p.parse_args(argv)
    try:
        figure = montage(args.images, args.names, args.column, args.width)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_png(args.out, figure)
    print(f"wrote {args.out} ({figure.shape[1]}x{figure.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
