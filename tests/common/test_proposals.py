"""Proposal-map edits shared by the tools (common/proposals.py)."""
from __future__ import annotations

import numpy as np
import pytest

from common.proposals import BACKGROUND, BORDER, INTERIOR, screen_proposal


def _ring(shape: tuple[int, int], top: int, left: int, size: int, width: int) -> np.ndarray:
    ring = np.zeros(shape, bool)
    ring[top:top + size, left:left + size] = True
    ring[top + width:top + size - width, left + width:left + size - width] = False
    return ring


def test_screen_proposal_drops_the_judged_border_and_refills_what_the_kept_ring_encloses():
    shape = (40, 60)
    gland_ring = _ring(shape, 2, 2, 16, 3)            # a gland's epithelium around a 10 x 10 lumen
    stroma = _ring(shape, 20, 30, 16, 3)             # stroma taken for a border: encloses 100 px too
    spm = np.zeros(shape, np.uint8)
    spm[2:18, 2:18] = INTERIOR
    spm[20:36, 30:46] = INTERIOR
    spm[gland_ring | stroma] = BORDER
    spm[0, 50:55] = BORDER                           # a stray border piece the judge keeps, alone
    keep = np.ones(shape, bool)
    keep[stroma] = False

    out = screen_proposal(spm, keep, None, hole_area=101)
    assert (out[gland_ring] == BORDER).all() and (out[5:15, 5:15] == INTERIOR).all()
    # the dropped ring's pixels are background, the interior it had enclosed stays gland
    assert (out[stroma] == BACKGROUND).all() and (out[23:33, 33:43] == INTERIOR).all()
    assert (out[0, 50:55] == BORDER).all()
    assert set(np.unique(out).tolist()) == {BACKGROUND, BORDER, INTERIOR}

    # a kept ring whose inside SPM left empty is filled (SPM's rule) only below hole_area
    empty_inside = spm.copy()
    empty_inside[5:15, 5:15] = BACKGROUND
    assert (screen_proposal(empty_inside, keep, None, hole_area=101)[5:15, 5:15] == INTERIOR).all()
    assert (screen_proposal(empty_inside, keep, None, hole_area=100)[5:15, 5:15] == BACKGROUND).all()
    assert (screen_proposal(empty_inside, keep, None, hole_area=0)[5:15, 5:15] == BACKGROUND).all()


def test_screen_proposal_keeps_everything_when_the_judge_agrees_and_refuses_another_size():
    spm = np.zeros((20, 20), np.uint8)
    spm[2:18, 2:18] = BORDER
    spm[6:14, 6:14] = INTERIOR
    assert np.array_equal(screen_proposal(spm, np.ones_like(spm, bool), None, hole_area=100), spm)
    with pytest.raises(ValueError, match="differ in size"):
        screen_proposal(spm, np.ones((20, 19), bool), None, hole_area=0)


def test_screen_proposal_adds_the_judged_gland_as_interior():
    spm = np.zeros((20, 30), np.uint8)
    spm[2:10, 2:10] = BORDER
    add = np.zeros(spm.shape, bool)
    add[12:18, 20:28] = True        # epithelium SPM's darkest cluster left out
    add[4:6, 4:6] = True            # already border: stays border
    out = screen_proposal(spm, np.ones(spm.shape, bool), add, hole_area=0)
    assert (out[12:18, 20:28] == INTERIOR).all() and (out[2:10, 2:10] == BORDER).all()
    assert (out == BACKGROUND).sum() == spm.size - 64 - 48
    with pytest.raises(ValueError, match="add_gland"):
        screen_proposal(spm, np.ones(spm.shape, bool), add[:, :-1], hole_area=0)
