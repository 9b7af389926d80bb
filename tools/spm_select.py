"""SPM's selection and post-processing again, on the cluster maps of an SPM run: no CSNet, no K-means.

    python tools/spm_select.py SPM_RUN IMAGES --output_root OUT [--min_border_pixels N] [--hole_area N]

``SPM_RUN`` is the folder ``tools/spm.py`` wrote (``.../cluster_5_nConv_3``, with ``cluster_label/``
and ``settings.json``), ``IMAGES`` the images it mined. Clustering is the expensive part of SPM (about 2
minutes per GlaS image on 2 CPU cores); the empirical cue, noise removal and hole filling take well
under a second, so studying ``--min_border_pixels`` or ``--hole_area`` on a set, or a tissue's own
values, needs no second clustering. The maps are the ones ``tools/spm.py`` would have written with the
same settings (``SPM.select.mine_proposal`` on the same clusters and gray image).

Outputs under ``OUT``: ``gland_proposal/``, ``border_proposal/``, ``overlay/`` and ``summary.csv``, as
``tools/spm.py``'s. An image without a cluster map, or a map of another size or with colours that are
not SPM's, is one ``error:`` line and a failed row; the batch goes on (exit 1).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from common.batch import ImageOutcome, claim_output_root, run_image_batch
from common.cli import exit_cleanly_on_sigterm, int_at_least
from common.io import InputError, check_outside_inputs, prepare_batch, read_bgr
from SPM.outputs import SUMMARY_FIELDS, read_cluster_map, read_run_settings, write_proposal
from SPM.select import mine_proposal


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SPM's selection and post-processing on the cluster maps of a run")
    p.add_argument("spm_run", type=Path, help="an SPM output folder (cluster_label/ and settings.json)")
    p.add_argument("images", type=Path, help="the images that run mined")
    p.add_argument("--output_root", type=Path, required=True, help="where the new proposals go")
    p.add_argument("--min_border_pixels", type=int_at_least(0), default=10000,
                   help="the border cluster must have more pixels than this")
    p.add_argument("--hole_area", type=int_at_least(0), default=15000, help="fill holes smaller than this (px)")
    p.add_argument("--skip_existing", action="store_true", help="skip images whose gland_proposal exists")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    out = {k: args.output_root / k for k in ("gland_proposal", "border_proposal", "overlay")}
    try:
        run_settings = read_run_settings(args.spm_run)
        check_outside_inputs(args.output_root, [args.spm_run, args.images])
        files = prepare_batch(args.images, out.values())
        settings = {"tool": "SPM select", "spm_run": str(args.spm_run.resolve()),
                    "min_border_pixels": args.min_border_pixels, "hole_area": args.hole_area}
        with claim_output_root(args.output_root, settings, resume=args.skip_existing):
            return run(args, files, out, run_settings["cluster_num"])
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {args.output_root}: cannot write ({err.strerror or err})", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, files: list[Path], out: dict[str, Path], k: int) -> int:
    def select(path: Path, status) -> ImageOutcome:
        name = path.stem
        image, warnings = read_bgr(path)
        labels = read_cluster_map(args.spm_run / "cluster_label" / f"{name}.png", image.shape, k)
        proposal = mine_proposal(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), labels, k,
                                 args.min_border_pixels, args.hole_area)
        return ImageOutcome(write_proposal(out, name, image, proposal), warnings + proposal.warnings)

    counts = run_image_batch(files, select, lambda name: out["gland_proposal"] / f"{name}.png",
                             args.output_root / "summary.csv", SUMMARY_FIELDS, skip_existing=args.skip_existing)
    print(f"SPM select: {counts.done} done, {counts.skipped} skipped, {counts.failed} failed of {counts.files} "
          f"files; proposals in {out['gland_proposal']}")
    return counts.exit_code


if __name__ == "__main__":
    sys.exit(main())
