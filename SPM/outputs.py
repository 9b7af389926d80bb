"""The files an SPM run writes for one image, and its row of the run's ``summary.csv``.

``tools/spm.py`` (clustering and selection) and ``tools/spm_select.py`` (selection again on saved
cluster maps) write the same files the same way, so a map of either reads like the other's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.io import write_png
from SPM.select import Proposal
from SPM.visualize import colorize_clusters, overlay_proposal

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
