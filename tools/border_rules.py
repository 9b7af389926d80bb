"""Score label-free border-cluster rules on the cluster maps of an SPM run against masks.

    python tools/border_rules.py SPM_RUN IMAGES MASKS [--groups Grade.csv] [--min_border_pixels N]
                                 [--hole_area N] [--csv per_image.csv]

``SPM_RUN`` is the folder ``tools/spm.py`` wrote (``.../cluster_5_nConv_3``, with ``cluster_label/``),
``IMAGES`` the images it mined and ``MASKS`` their masks (``NAME.png``, > 0 gland): a declared validation
set such as the GlaS train images, never the test set. Every image with a cluster map is scored; the
rules (``evaluation/border_rules.py``: SPM's darkest cluster, the brightest, and the nearest to the set's
border prototype for five colour features) and the mask oracle are printed as pooled mIoU, per group of
``--groups`` too. A missing image or mask, or a map of another size, is one ``error:`` line (exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import int_at_least
from common.io import InputError, read_bgr, read_mask_for
from evaluation.border_rules import ImageClusters, image_clusters, oracle_choice, rules_for
from evaluation.folders import write_table
from evaluation.groups import UNLISTED, add_group_arguments, read_groups
from evaluation.pixel import PooledCounts
from SPM.outputs import read_cluster_map, read_run_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Label-free border-cluster rules on an SPM run, scored against masks")
    p.add_argument("spm_run", type=Path, help="an SPM output folder (cluster_label/ and settings.json)")
    p.add_argument("images", type=Path, help="the images that run mined")
    p.add_argument("masks", type=Path, help="their masks (a declared validation set)")
    p.add_argument("--min_border_pixels", type=int_at_least(0), default=10000)
    p.add_argument("--hole_area", type=int_at_least(0), default=15000)
    p.add_argument("--csv", type=Path, help="write each image's choice and score per rule here")
    add_group_arguments(p)
    return p.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[list[ImageClusters], dict]:
    k = read_run_settings(args.spm_run)["cluster_num"]
    maps = sorted((args.spm_run / "cluster_label").glob("*.png"))
    if not maps:
        raise InputError(args.spm_run / "cluster_label", "no cluster maps (*.png)")
    images, gts = [], {}
    for colour_path in maps:
        name = colour_path.stem
        image, _ = read_bgr(args.images / f"{name}.png")
        labels = read_cluster_map(colour_path, image.shape, k)
        gt = read_mask_for(args.masks / f"{name}.png", image.shape, "no such file") > 0
        images.append(image_clusters(name, image, labels, k, args.min_border_pixels, args.hole_area))
        gts[name] = gt
    return images, gts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        groups = read_groups(args.groups, args.group_column) if args.groups else {}
        images, gts = load(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rules = {**rules_for(images), "oracle (uses the masks)": lambda im: oracle_choice(im, gts[im.name])}
    names = sorted({groups.get(im.name, UNLISTED) for im in images}) if groups else []
    per_image = [{"image": im.name, "group": groups.get(im.name, UNLISTED)} for im in images]
    print(f"{len(images)} images; pooled mIoU per rule" + (f" (all, {', '.join(names)})" if names else ""))
    for rule, choose in rules.items():
        counts = {"all": PooledCounts(), **{g: PooledCounts() for g in names}}
        changed = 0
        for im, row in zip(images, per_image, strict=True):
            c = choose(im)
            changed += c != im.darkest
            one = PooledCounts()
            one.update(im.glands[c], gts[im.name])
            counts["all"] += one  # pooling a set is adding its images' counts
            if names:
                counts[row["group"]] += one
            row[f"{rule} cluster"], row[f"{rule} mIoU"] = c, f"{one.miou():.4f}"
        scores = "  ".join(f"{key} {pc.miou():.4f}" for key, pc in counts.items())
        print(f"  {rule:24s} {scores}  (another cluster than the darkest in {changed})")
    if args.csv and not write_table(args.csv, per_image, list(per_image[0])):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
