"""Screen SPM's proposals with a pretrained backbone: leave out the images the features disagree with.

    python tools/screen_proposals.py PRETRAIN_CONFIG IMAGES PROPOSALS OUT [--drop 0.2]
        [--checkpoint PATH] [--folds 2] [--masks MASKS [--groups CSV]] [--cfg-options key=value ...]

A linear probe of the backbone's frozen features is fitted to the proposals of the other folds of
images (evaluation/probe.py) and predicts each image; the image's agreement is the 2-class mIoU of that
prediction against its own proposal, on the feature grid. The ``--drop`` fraction of images with the
lowest agreement is left out: ``OUT/kept.txt`` lists the others (one stem per line) for
``tools/crop_img_and_gt.py --only OUT/kept.txt``, and ``OUT/agreement.csv`` gives every image's
agreement. No label is read unless ``--masks`` names a declared validation set (never the test set's):
then each image's proposal is also scored against its mask, and the proposals left in and left out are
pooled and printed — how well the agreement finds the wrong proposals.
Exit codes: 0 done; 2 bad config, images, proposals, masks or output folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction
from scipy.stats import spearmanr

import MSG  # noqa: F401  (registers WideRes38)
from common.cli import load_config
from common.io import InputError, check_outside_inputs, check_writable, write_bytes, write_csv
from evaluation.folders import read_gland, score_mask_pairs
from evaluation.groups import add_group_arguments, group_line, group_scores, read_groups
from evaluation.pixel import PooledCounts
from evaluation.probe import agreement, backbone_features, cross_fit_logits, least_agreeing, to_feature_grid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Leave out the proposals a backbone's features disagree with")
    p.add_argument("config", help="pretraining config (configs/selfsup/): backbone, data.scale, mean, std")
    p.add_argument("images")
    p.add_argument("proposals", help="SPM's gland_proposal folder of IMAGES")
    p.add_argument("out", type=Path, help="folder for kept.txt and agreement.csv")
    p.add_argument("--drop", type=float, default=0.2, help="fraction of images to leave out (default: %(default)s)")
    p.add_argument("--checkpoint", help="backbone weights (default: WORK_DIR/backbone.pth of the config)")
    p.add_argument("--folds", type=int, default=2, help="folds of images (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=50000, help="feature cells per fit (default: %(default)s)")
    p.add_argument("--masks", help="masks of a declared validation set: score the kept and the left-out proposals")
    add_group_arguments(p)
    p.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    args = p.parse_args(argv)
    if not 0.0 <= args.drop < 1.0:
        p.error(f"--drop must lie in [0, 1), got {args.drop}")
    if args.groups and not args.masks:
        p.error("--groups needs --masks (the groups are scored against the masks)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from MSG.selfsup.trainer import build_backbone, load_images

        cfg = load_config(args.config, args.cfg_options)
        groups = read_groups(args.groups, args.group_column) if args.groups else None
        checkpoint = args.checkpoint or str(Path(cfg.work_dir) / "backbone.pth")
        backbone = build_backbone(cfg, checkpoint)
        check_outside_inputs(args.out, [Path(args.images), Path(args.proposals)])
        check_writable(args.out)
        images, names = load_images(args.images, float(cfg.data.get("scale", 1.0)))
        stems = [Path(n).stem for n in names]
        masks = [read_gland(args.masks, s, None, proposals=False) for s in stems] if args.masks else None
        proposals = [read_gland(args.proposals, s, None if masks is None else masks[i].shape, proposals=True)
                     for i, s in enumerate(stems)]
        features = [backbone_features(backbone, img, cfg.mean, cfg.std) for img in images]
        grids = [to_feature_grid(p, f.shape[:2]) for p, f in zip(proposals, features, strict=True)]
        logits = cross_fit_logits(features, grids, folds=args.folds, max_pixels=args.max_pixels,
                                  seed=int(cfg.get("seed", 0)))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {args.proposals}: {err}", file=sys.stderr)
        return 2
    agreements = [agreement(lg > 0, g) for lg, g in zip(logits, grids, strict=True)]
    dropped = set(least_agreeing(agreements, args.drop))
    rows = [{"image": s, "agreement": f"{a:.4f}", "kept": int(i not in dropped)}
            for i, (s, a) in enumerate(zip(stems, agreements, strict=True))]
    fields = ["image", "agreement", "kept"]
    if masks is not None:
        _, scored = score_mask_pairs(zip(stems, proposals, masks, strict=True))
        for row, one in zip(rows, scored, strict=True):
            row["proposal_mIoU"] = one["mIoU"]
        fields.append("proposal_mIoU")
    try:
        write_csv(args.out / "agreement.csv", rows, fields)
        kept_names = [s for i, s in enumerate(stems) if i not in dropped]
        write_bytes(args.out / "kept.txt", "".join(f"{s}\n" for s in kept_names).encode())
    except OSError as err:
        print(f"error: {args.out}: cannot write ({err.strerror or err})", file=sys.stderr)
        return 2
    lowest_kept = min((agreements[i] for i in range(len(stems)) if i not in dropped), default=0.0)
    print(f"backbone: {checkpoint}; {len(stems)} images, {len(dropped)} left out (the kept agree at "
          f"{lowest_kept:.4f} or more): " + ", ".join(stems[i] for i in sorted(dropped)))
    if masks is not None:
        rho = spearmanr(agreements, [float(row["proposal_mIoU"]) for row in rows]).statistic
        print(f"rank correlation (Spearman) of agreement and proposal mIoU over the images: {rho:.3f}")
        subsets = {"all proposals": scored,
                   "kept proposals": [r for i, r in enumerate(scored) if i not in dropped],
                   "left-out proposals": [r for i, r in enumerate(scored) if i in dropped]}
        for label, subset in subsets.items():
            if not subset:
                continue
            pooled = PooledCounts()
            for row in subset:
                pooled += row["pixels"]
            print(group_line(f"{label} (all)", {"images": len(subset), "pixels": pooled, "objects": None}
                             ).removeprefix("group "))
            for name, entry in (group_scores(subset, groups).items() if groups else ()):
                print(group_line(f"{label} ({name})", entry).removeprefix("group "))
    print(f"wrote {args.out / 'kept.txt'} and {args.out / 'agreement.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
