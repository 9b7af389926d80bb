"""Convert the official GlaS (Warwick-QU) download to the project's layout.

    python tools/prepare_glas.py Warwick_QU_Dataset glas

Reads the flat folder (``train_1.bmp`` + ``train_1_anno.bmp``, ``testA_*``, ``testB_*``,
``Grade.csv``) and writes ``glas/{train,testA,testB}/{images,masks}/NAME.png``: lossless PNG copies
of the images, masks with the official instance ids kept (0 background, 1..n glands; uint8 PNG, or
16-bit when an image has more than 255 glands) so that the GlaS object metrics see touching glands
as separate objects; every tool reads any value > 0 as gland. Verifies that every image has
its annotation of the same size and reports the split counts against the official 85/60/20; a
problem is reported on one line per file and the file skipped (exit 1).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from common.io import (
    InputError,
    check_unique_stems,
    check_writable,
    is_image_file,
    list_files,
    read_bgr,
    read_mask_for,
    write_csv,
    write_png,
)
from evaluation.glas_objects import renumber_ids

OFFICIAL_COUNTS = {"train": 85, "testA": 60, "testB": 20}
NAME = re.compile(r"^(train|testA|testB)_(\d+)$")


def instance_mask(anno: np.ndarray) -> np.ndarray:
    """The annotation's instance ids renumbered 1..n (0 stays background), as uint8 or uint16 PNG data."""
    ids = renumber_ids(anno)
    return ids.astype(np.uint8 if ids.max() < 256 else np.uint16)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Official GlaS download -> project layout")
    p.add_argument("src", help="the official flat folder")
    p.add_argument("dst", help="output root, e.g. glas")
    args = p.parse_args(argv)
    src, dst = Path(args.src), Path(args.dst)
    try:
        if dst.resolve() == src.resolve():
            raise InputError(dst, "is the source folder; write the project layout to another folder")
        files = [f for f in list_files(src) if is_image_file(f)]
        check_unique_stems(f for f in files if NAME.match(f.stem))
        if not any(NAME.match(f.stem) for f in files):
            raise InputError(src, "no GlaS images (train_N, testA_N, testB_N with NAME_anno beside them); "
                                  "give the official Warwick_QU_Dataset folder")
        check_writable(dst)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = dict.fromkeys(OFFICIAL_COUNTS, 0)
    rows, errors = [], []
    for path in files:
        match = NAME.match(path.stem)
        if not match:
            continue  # annotations and unrelated files
        split = match.group(1)
        anno = path.with_name(f"{path.stem}_anno{path.suffix}")
        try:
            image, _ = read_bgr(path)
            mask = read_mask_for(anno, image.shape, f"no annotation for {path.name}")
        except InputError as err:
            errors.append(str(err))
            print(f"error: {err}", file=sys.stderr)
            continue
        try:
            write_png(dst / split / "images" / f"{path.stem}.png", image)
            write_png(dst / split / "masks" / f"{path.stem}.png", instance_mask(mask))
        except OSError as err:
            print(f"error: {dst}: cannot write ({err.strerror or err})", file=sys.stderr)
            return 2
        counts[split] += 1
        rows.append({"split": split, "name": path.stem, "width": image.shape[1], "height": image.shape[0],
                     "instances": len(np.unique(mask[mask > 0])), "fg_frac": f"{(mask > 0).mean():.4f}"})
    if (src / "Grade.csv").is_file():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "Grade.csv", dst / "Grade.csv")
    write_csv(dst / "manifest.csv", rows, ["split", "name", "width", "height", "instances", "fg_frac"])
    summary = ", ".join(f"{k} {v}/{OFFICIAL_COUNTS[k]}" for k, v in counts.items())
    print(f"wrote {sum(counts.values())} image/mask pairs to {dst} ({summary}); {len(errors)} failed")
    for split, n in counts.items():
        if n and n != OFFICIAL_COUNTS[split]:
            print(f"warning: {split} has {n} images, the official set has {OFFICIAL_COUNTS[split]}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
