"""Proposal maps for a self-training round: a trained model's gland masks, SPM's border inside them.

    python tools/refine_proposals.py PRED_MASKS SPM_PROPOSALS OUT [--fill-holes 15000]
        [--max-area-ratio R --probabilities PROB_DIR]

For every SPM map ``SPM_PROPOSALS/NAME.png`` the model's mask ``PRED_MASKS/NAME.png`` (``tools/predict.py``'s
``masks/``, 0/255) becomes the gland after its holes smaller than ``--fill-holes`` px are filled (SPM's
interior rule, default its ``--hole_area``); SPM's border pixels inside it stay border, the rest is
interior, and what the model rejected is background (:func:`common.proposals.proposal_from_prediction`).
With ``--max-area-ratio R`` a mask larger than R times SPM's gland area in the same image keeps only its
most probable pixels (``PROB_DIR/NAME.png`` of ``tools/predict.py --probabilities``) before its holes are
filled (:func:`common.proposals.cap_gland_area`). No mask of the data set is read. ``OUT/NAME.png`` are
0/1/2 maps for ``tools/crop_img_and_gt.py``. A missing or mismatched mask or probability map is reported
on one line and the other images are still written (exit 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.cli import exit_cleanly_on_sigterm, int_at_least, positive_float
from common.io import (
    InputError,
    check_outside_inputs,
    check_writable,
    list_files,
    read_mask,
    read_mask_for,
    read_probability,
    write_png,
)
from common.proposals import BORDER, INTERIOR, as_proposal, cap_gland_area, proposal_from_prediction


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pred_masks", type=Path,
                   help="the model's 0/255 gland masks (tools/predict.py --out DIR: DIR/masks)")
    p.add_argument("spm_proposals", type=Path, help="SPM's gland_proposal/ folder of the same images")
    p.add_argument("out", type=Path, help="folder for the new 0/1/2 proposal maps")
    p.add_argument("--fill-holes", type=int_at_least(0), default=15000,
                   help="fill holes of the predicted glands smaller than this many pixels (0: none)")
    p.add_argument("--max-area-ratio", type=positive_float, default=None, metavar="R",
                   help="limit each predicted gland mask to R times SPM's gland area in its image, keeping its "
                        "most probable pixels (needs --probabilities); default: no limit")
    p.add_argument("--probabilities", type=Path, default=None, metavar="PROB_DIR",
                   help="the model's 8-bit gland probability maps (tools/predict.py --probabilities)")
    args = p.parse_args(argv)
    if (args.max_area_ratio is None) != (args.probabilities is None):
        p.error("--max-area-ratio and --probabilities go together")
    exit_cleanly_on_sigterm()
    try:
        inputs = [f for f in (args.pred_masks, args.spm_proposals, args.probabilities) if f is not None]
        for folder in inputs:
            if not folder.is_dir():
                raise InputError(folder, "folder not found")
        check_outside_inputs(args.out, inputs)
        check_writable(args.out)
        proposals = [f for f in list_files(args.spm_proposals) if f.suffix.lower() == ".png"]
        if not proposals:
            raise InputError(args.spm_proposals, "no .png proposal maps")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    errors = 0
    gland_px = border_px = total_px = capped = 0
    for path in proposals:
        try:
            spm = as_proposal(path, read_mask(path))
            pred_path = args.pred_masks / path.name
            gland = read_mask_for(pred_path, spm.shape, "no predicted mask for this proposal map") > 0
            if args.max_area_ratio is not None:
                probability = read_probability(args.probabilities / path.name, spm.shape,
                                               "no probability map for this proposal map")
                within = cap_gland_area(gland, probability, spm, args.max_area_ratio)
                capped += int(within.sum() < gland.sum())
                gland = within
            refined = proposal_from_prediction(gland, spm, args.fill_holes)
            write_png(args.out / path.name, refined)
        except InputError as err:
            errors += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        gland_px += int(np.isin(refined, (BORDER, INTERIOR)).sum())
        border_px += int((refined == BORDER).sum())
        total_px += refined.size
    done = len(proposals) - errors
    share = f"gland {gland_px / total_px:.1%} of the pixels, border {border_px / max(gland_px, 1):.1%} of the gland" \
        if total_px else "nothing written"
    limited = f", {capped} limited to {args.max_area_ratio:g}x SPM's gland area" \
        if args.max_area_ratio is not None else ""
    print(f"refined {done} proposal maps into {args.out} ({share}{limited}); {errors} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
