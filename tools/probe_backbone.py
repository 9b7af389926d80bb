"""Linear probe of a (pretrained) backbone on images with masks (evaluation/probe.py).

    python tools/probe_backbone.py PRETRAIN_CONFIG IMAGES MASKS [--checkpoint PATH|none]
        [--proposals SPM_GLAND_PROPOSAL_DIR] [--folds 2] [--groups CSV] [--cfg-options key=value ...]

Builds the backbone of a pretraining config (configs/selfsup/) with its weights (default: the config's
``work_dir/backbone.pth``; ``none``: the random initialisation a from-scratch run starts from), reads
its features of every image at the config's ``data.scale``, and scores against MASKS, on held-out
folds of images, a linear probe fitted to the masks and, with ``--proposals``, one fitted to SPM's
proposals (label-free). Masks are a declared validation set: never pass the test set's.
Exit codes: 0 done; 2 bad config, images, masks or proposals.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

import MSG  # noqa: F401  (registers WideRes38)
from common.cli import load_config
from common.io import InputError
from evaluation.folders import read_gland, score_mask_pairs
from evaluation.groups import add_group_arguments, group_line, group_scores, read_groups
from evaluation.probe import backbone_features, convergence_note, cross_fit, to_feature_grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Linear probe of a backbone's features against masks")
    p.add_argument("config", help="pretraining config (configs/selfsup/): backbone, data.scale, mean, std")
    p.add_argument("images")
    p.add_argument("masks", help="masks of a declared validation set (never the test set)")
    p.add_argument("--checkpoint", help="backbone weights (default: WORK_DIR/backbone.pth); 'none': random init")
    p.add_argument("--proposals", help="SPM gland_proposal folder of IMAGES: also fit a probe to it (label-free)")
    p.add_argument("--folds", type=int, default=2, help="folds of images (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=50000, help="feature cells per fit (default: %(default)s)")
    add_group_arguments(p)
    p.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    args = p.parse_args(argv)
    try:
        from MSG.selfsup.trainer import build_backbone, load_images

        cfg = load_config(args.config, args.cfg_options)
        groups = read_groups(args.groups, args.group_column) if args.groups else None
        checkpoint = args.checkpoint or str(Path(cfg.work_dir) / "backbone.pth")
        backbone = build_backbone(cfg, checkpoint)
        images, names = load_images(args.images, float(cfg.data.get("scale", 1.0)))
        stems = [Path(n).stem for n in names]
        masks = [read_gland(args.masks, s, None, proposals=False) for s in stems]
        shapes = [m.shape for m in masks]
        features = [backbone_features(backbone, img, cfg.mean, cfg.std) for img in images]
        labels = {"masks": [to_feature_grid(m, f.shape[:2]) for m, f in zip(masks, features, strict=True)]}
        if args.proposals:
            labels["proposals"] = [to_feature_grid(read_gland(args.proposals, s, sh, proposals=True), f.shape[:2])
                                   for s, sh, f in zip(stems, shapes, features, strict=True)]
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"backbone: {checkpoint}; {len(images)} images at scale {cfg.data.get('scale', 1.0)}, "
          f"features {features[0].shape[-1]} channels, {args.folds} folds")
    for source, fit_labels in labels.items():
        try:
            with convergence_note(source):
                predicted = cross_fit(features, fit_labels, shapes, folds=args.folds, max_pixels=args.max_pixels,
                                      seed=int(cfg.get("seed", 0)))
        except ValueError as err:
            print(f"error: {args.images}: {err}", file=sys.stderr)
            return 2
        pooled, rows = score_mask_pairs(zip(stems, predicted, masks, strict=True))
        print(group_line(f"probe fitted to {source} (all)", {"images": len(rows), "pixels": pooled, "objects": None}
                         ).removeprefix("group "))
        for name, entry in (group_scores(rows, groups).items() if groups else ()):
            print(group_line(f"probe fitted to {source} ({name})", entry).removeprefix("group "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
