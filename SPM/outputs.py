"""The files an SPM run writes for one image, and its row of the run's ``summary.csv``.

``tools/spm.py`` (clustering and selection) and ``tools/spm_select.py`` (selection again on saved
cluster maps) write the same files the same way, so a map of either reads like the other's; the tools
that work on a finished run (``spm_select``, ``border_rules``) read its settings and cluster maps back
with :func:`read_run_settings` and :func:`read_cluster_map`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.io import InputError, read_bgr, write_png
from SPM.select import Proposal
from SPM.visualize import _PALETTE, clusters_from_colours, colorize_clusters, overlay_proposal

SUMMARY_FIELDS = (
    "image", "status", "height", "width", "selected_cluster", "cluster_mean_gray",
    "border_fraction", "gland_fraction", "seconds", "warnings",
)


def write_proposal(out: dict[str, Path], name: str, image_bgr: np.ndarray, proposal: Proposal,
                   labels: np.ndarray | None = None) -> dict:
    """Write ``NAME.png`` into ``out``'s ``border_proposal``, ``overlay`` and ``gland_proposal`` folders
    (and the colour map of ``labels`` into ``cluster_label``); returns the image's summary fields.

    ``gland_proposal`` is written last: it marks the image as done for ``--skip_existing``.
    """
    write_png(out["border_proposal"] / f"{name}.png", proposal.border.astype(np.uint8) * 255)
    if labels is not None:
        write_png(out["cluster_label"] / f"{name}.png", colorize_clusters(labels))
    write_png(out["overlay"] / f"{name}.png", overlay_proposal(image_bgr, proposal.proposal_map))
    write_png(out["gland_proposal"] / f"{name}.png", proposal.proposal_map)
    h, w = proposal.proposal_map.shape
    return {"height": h, "width": w, "selected_cluster": proposal.cluster,
            "cluster_mean_gray": f"{proposal.cluster_gray:.3f}", "border_fraction": f"{proposal.border.mean():.5f}",
            "gland_fraction": f"{proposal.gland.mean():.5f}"}


def read_run_settings(spm_run: Path) -> dict:
    """The settings of an SPM run; refuses a folder that has no cluster maps."""
    if not (spm_run / "cluster_label").is_dir():
        raise InputError(spm_run, "no cluster_label/ folder: not an SPM output folder (.../cluster_K_nConv_N)")
    try:
        settings = json.loads((spm_run / "settings.json").read_text())
    except (OSError, ValueError):
        settings = {}
    k = int(settings.get("cluster_num", len(_PALETTE)))
    if k > len(_PALETTE):
        raise InputError(spm_run, f"{k} clusters: colour maps hold at most {len(_PALETTE)}")
    return settings | {"cluster_num": k}


def read_cluster_map(colour_path: Path, image_shape: tuple[int, ...], k: int) -> np.ndarray:
    """The ``(H, W)`` cluster ids of a run's ``cluster_label`` colour map of an image of ``image_shape``."""
    if not colour_path.is_file():
        raise InputError(colour_path, "no cluster map for this image in the SPM run")
    colours, _ = read_bgr(colour_path)
    if colours.shape != tuple(image_shape):
        raise InputError(colour_path, f"cluster map {colours.shape[:2]} and image {tuple(image_shape[:2])} "
                         "differ in size")
    labels = clusters_from_colours(colours)
    if (labels < 0).any() or labels.max() >= k:
        raise InputError(colour_path, f"colours that are not SPM's {k}-cluster palette: not a cluster map")
    return labels
