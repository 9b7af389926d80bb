"""How a trained model treats each kind of proposal pixel: what it learnt from its training signal.

A network trained on SPM's proposals is told "gland" at the border and the interior, "background"
elsewhere. Crossing the three proposal classes with the ground truth gives six kinds of pixel; for
each, the share of all pixels and the share the model calls gland:

    proposal border,     truly gland       followed: the model learnt the signal
    proposal interior,   truly gland       followed: the lumen SPM reached by hole filling
    proposal background, truly gland       repaired: an omission of SPM the model recovers
    proposal border,     truly background  copied: an error of SPM the model reproduces
    ...

A model that follows the border but not the interior has learnt the darkest cluster rather than the
gland; one that calls proposal-and-true background gland widens the glands by itself.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.io import InputError, read_mask, read_mask_for
from common.proposals import BACKGROUND, BORDER, INTERIOR, as_proposal
from evaluation.folders import Pairing, gland_mask, iter_read_pairs
from evaluation.groups import pool_by_group

PROPOSAL_CLASSES = {BACKGROUND: "background", BORDER: "border", INTERIOR: "interior"}


@dataclass
class FollowCounts:
    """Pixel counts by (proposal class, truth): ``pixels[k, t]`` and ``gland[k, t]`` (of those, called gland),
    ``k`` the proposal class 0/1/2, ``t`` 0 background / 1 gland in the mask."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros((3, 2), np.int64))
    gland: np.ndarray = field(default_factory=lambda: np.zeros((3, 2), np.int64))

    def update(self, pred: np.ndarray, proposal: np.ndarray, gt: np.ndarray) -> None:
        """Add one image: boolean ``pred`` and ``gt``, ``proposal`` 0/1/2, all of one shape."""
        if not pred.shape == proposal.shape == gt.shape:
            raise ValueError(f"prediction {pred.shape}, proposal {proposal.shape} and mask {gt.shape} differ in size")
        pred = pred.astype(bool)
        gt = gt.astype(bool)
        for k in PROPOSAL_CLASSES:
            here = proposal == k
            for t in (0, 1):
                cell = here & (gt == bool(t))
                self.pixels[k, t] += np.count_nonzero(cell)
                self.gland[k, t] += np.count_nonzero(cell & pred)

    def __iadd__(self, other: FollowCounts) -> FollowCounts:
        self.pixels = self.pixels + other.pixels
        self.gland = self.gland + other.gland
        return self

    def rows(self) -> list[dict[str, str]]:
        """One row per (proposal class, truth): ``proposal``, ``truth``, ``pixel_share``, ``called_gland``
        (4 decimals; ``called_gland`` empty where there is no such pixel)."""
        total = max(int(self.pixels.sum()), 1)
        out = []
        for k, name in PROPOSAL_CLASSES.items():
            for t, truth in ((1, "gland"), (0, "background")):
                n = int(self.pixels[k, t])
                out.append({"proposal": name, "truth": truth, "pixel_share": f"{n / total:.4f}",
                            "called_gland": f"{self.gland[k, t] / n:.4f}" if n else ""})
        return out


def score_follow(pred_dir: str | Path, proposal_dir: str | Path, gt_dir: str | Path
                 ) -> tuple[FollowCounts, list[dict], Pairing]:
    """Pooled counts of a folder of gland masks against the proposals the model trained on and the
    masks: ``(pooled, rows, pairing)``, rows ``{"image": stem, "follow": that image's counts}``. A
    missing proposal, or one of another size, is an error of that image (in ``pairing.errors``)."""
    pooled = FollowCounts()
    rows: list[dict] = []
    pairing = Pairing()
    for stem, pred, gt_raw in iter_read_pairs(pred_dir, gt_dir, pairing,
                                              lambda path: gland_mask(path, read_mask(path), None, False)):
        path = Path(proposal_dir) / f"{stem}.png"  # SPM writes NAME.png
        try:
            proposal = as_proposal(path, read_mask_for(path, pred.shape, "no proposal map for this prediction"))
        except InputError as err:
            pairing.errors.append(str(err))
            continue
        one = FollowCounts()
        one.update(pred, proposal, gt_raw > 0)
        pooled += one
        rows.append({"image": stem, "follow": one})
    return pooled, rows, pairing


def group_follow(rows: Iterable[Mapping], groups: Mapping[str, str]) -> dict[str, tuple[int, FollowCounts]]:
    """``{group: (images, pooled counts)}`` over rows ``{"image": stem, "follow": FollowCounts}``, sorted;
    images missing from ``groups`` form the group ``evaluation.groups.UNLISTED``."""
    return pool_by_group(rows, groups, "follow", lambda _: FollowCounts())
