"""Screen SPM's proposals with a pretrained backbone: leave out the images the features disagree with,
or keep each image's border only where they agree.

    python tools/screen_proposals.py PRETRAIN_CONFIG IMAGES PROPOSALS OUT [--drop 0.2]
        [--border-threshold T [--gland-threshold G] [--hole-area 15000]] [--checkpoint PATH] [--folds 2]
        [--masks MASKS [--groups CSV]] [--cfg-options key=value ...]

A linear probe of the backbone's frozen features is fitted to the proposals of the other folds of
images (evaluation/probe.py) and predicts each image; the image's agreement is the 2-class mIoU of that
prediction against its own proposal, on the feature grid. The ``--drop`` fraction of images with the
lowest agreement is left out: ``OUT/kept.txt`` lists the others (one stem per line) for
``tools/crop_img_and_gt.py --only OUT/kept.txt``, and ``OUT/agreement.csv`` gives every image's
agreement. ``--border-threshold T`` also writes every image's proposal map with SPM's border kept only
where the probe's gland logit exceeds ``T``, and with ``--gland-threshold G`` gland added where it
exceeds ``G`` (``common.proposals.screen_proposal``: the interior, the kept border and the added gland,
holes under ``--hole-area`` px filled) to ``OUT/gland_proposal/`` — where SPM's cue took the stroma for
the border in one image, the probe fitted to the other images calls it background.
No label is read unless ``--masks`` names a declared validation set (never the test set's): then each
image's proposal is also scored against its mask, and the proposals left in and left out (and the
screened maps) are pooled and printed — how well the features find the wrong proposals.
Exit codes: 0 done; 2 bad config, images, proposals, masks or output folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from mmengine.config import DictAction
from scipy.stats import spearmanr

import MSG  # noqa: F401  (registers WideRes38)
from common.cli import load_config
from common.io import (
    InputError,
    check_outside_inputs,
    check_writable,
    find_ground_truth,
    read_mask,
    write_bytes,
    write_csv,
    write_png,
)
from common.proposals import as_proposal, screen_proposal
from evaluation.folders import read_gland, score_mask_pairs
from evaluation.groups import add_group_arguments, group_line, group_scores, read_groups
from evaluation.pixel import PooledCounts
from evaluation.probe import (
    agreement,
    backbone_features,
    convergence_note,
    cross_fit_logits,
    least_agreeing,
    to_feature_grid,
    upsample_logits,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Leave out the proposals a backbone's features disagree with")
    p.add_argument("config", help="pretraining config (configs/selfsup/): backbone, data.scale, mean, std")
    p.add_argument("images")
    p.add_argument("proposals", help="SPM's gland_proposal folder of IMAGES")
    p.add_argument("out", type=Path, help="folder for kept.txt and agreement.csv")
    p.add_argument("--drop", type=float, default=0.2, help="fraction of images to leave out (default: %(default)s)")
    p.add_argument("--border-threshold", type=float, metavar="T",
                   help="also write OUT/gland_proposal/ with SPM's border kept where the probe's logit > T")
    p.add_argument("--gland-threshold", type=float, metavar="G",
                   help="with --border-threshold: also add gland where the probe's logit > G")
    p.add_argument("--hole-area", type=int, default=15000,
                   help="with --border-threshold: fill holes of the screened gland under this many px "
                        "(default: %(default)s, SPM's)")
    p.add_argument("--checkpoint", help="backbone weights (default: WORK_DIR/backbone.pth of the config)")
    p.add_argument("--folds", type=int, default=2, help="folds of images (default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=50000, help="feature cells per fit (default: %(default)s)")
    p.add_argument("--masks", help="masks of a declared validation set: score the kept and the left-out proposals")
    add_group_arguments(p)
    p.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    args = p.parse_args(argv)
    if not 0.0 <= args.drop < 1.0:
        p.error(f"--drop must lie in [0, 1), got {args.drop}")
    if args.gland_threshold is not None and args.border_threshold is None:
        p.error("--gland-threshold needs --border-threshold")
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
        spm_maps = [read_proposal_map(args.proposals, s, None if masks is None else masks[i].shape)
                    for i, s in enumerate(stems)]
        proposals = [m > 0 for m in spm_maps]
        features = [backbone_features(backbone, img, cfg.mean, cfg.std) for img in images]
        grids = [to_feature_grid(p, f.shape[:2]) for p, f in zip(proposals, features, strict=True)]
        with convergence_note("the proposals"):
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
    screened = None
    if args.border_threshold is not None:
        gland_logits = [upsample_logits(lg, m.shape) for m, lg in zip(spm_maps, logits, strict=True)]
        screened = [screen_proposal(m, lg > args.border_threshold,
                                    None if args.gland_threshold is None else lg > args.gland_threshold,
                                    args.hole_area)
                    for m, lg in zip(spm_maps, gland_logits, strict=True)]
    try:
        if screened is not None:
            for stem, screened_map in zip(stems, screened, strict=True):
                write_png(args.out / "gland_proposal" / f"{stem}.png", screened_map)
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
        if screened is not None:
            subsets["screened proposals"] = score_mask_pairs(
                zip(stems, [m > 0 for m in screened], masks, strict=True))[1]
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
    if screened is not None:
        spm_border = sum(int((m == 1).sum()) for m in spm_maps)
        kept_border = sum(int((m == 1).sum()) for m in screened)
        spm_gland = sum(int((m > 0).sum()) for m in spm_maps)
        gland = sum(int((m > 0).sum()) for m in screened)
        print(f"border kept where the probe's logit > {args.border_threshold:g}: "
              f"{kept_border / max(spm_border, 1):.1%} of SPM's border pixels; gland {gland / max(spm_gland, 1):.1%} "
              f"of SPM's; wrote {len(screened)} maps to {args.out / 'gland_proposal'}")
    print(f"wrote {args.out / 'kept.txt'} and {args.out / 'agreement.csv'}")
    return 0


def read_proposal_map(folder: str, stem: str, shape: tuple[int, int] | None) -> np.ndarray:
    """SPM's 0/1/2 map of image ``stem`` in ``folder``, refused when its size is not ``shape`` (H, W)."""
    path = find_ground_truth(folder, stem)
    proposal = as_proposal(path, read_mask(path))
    if shape is not None and proposal.shape != shape:
        raise InputError(path, f"size {proposal.shape[1]}x{proposal.shape[0]} differs from its mask "
                               f"{shape[1]}x{shape[0]}")
    return proposal


if __name__ == "__main__":
    sys.exit(main())
