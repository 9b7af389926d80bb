"""The empirical cue, every noise-removal branch, hole filling and the map encoding, on
hand-made arrays with hand-derived expected outputs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import measure

from common.morphology import fill_enclosed_holes, remove_small_holes, remove_small_objects
from common.proposals import BACKGROUND, BORDER, INTERIOR
from SPM.select import (
    cluster_stats,
    encode_proposal,
    fill_glands,
    mine_proposal,
    remove_noise,
    select_border_cluster,
)


def blocks(shape, *rects):
    m = np.zeros(shape, bool)
    for y, x, h, w in rects:
        m[y : y + h, x : x + w] = True
    return m


# ---- selection rule ---------------------------------------------------------------------------
def test_cluster_stats_counts_and_means():
    gray = np.array([[10, 20], [30, 40]], np.uint8)
    labels = np.array([[0, 0], [2, 2]])
    sizes, means = cluster_stats(gray, labels, 3)
    assert sizes.tolist() == [2, 0, 2]
    assert means[0] == 15 and means[2] == 35 and np.isnan(means[1])


def test_selects_darkest_cluster_above_threshold():
    sizes = np.array([5000, 20000, 15000, 30000])
    means = np.array([50.0, 120.0, 80.0, 200.0])
    # cluster 0 is darkest but too small; next darkest (2) qualifies
    assert select_border_cluster(sizes, means, 10000) == (2, None)


def test_threshold_is_strict():
    sizes = np.array([10000, 10001])
    means = np.array([10.0, 90.0])
    assert select_border_cluster(sizes, means, 10000)[0] == 1


def test_empty_cluster_is_never_selected():
    sizes = np.array([0, 20000, 30000])
    means = np.array([np.nan, 100.0, 50.0])
    assert select_border_cluster(sizes, means, 10000) == (2, None)


def test_fallback_takes_largest_and_warns():
    sizes = np.array([900, 5000, 3000])
    means = np.array([10.0, 200.0, 100.0])
    idx, warning = select_border_cluster(sizes, means, 10000)
    assert idx == 1  # the largest, not the brightest-after-loop of the original (also 1 here by value)
    assert "no cluster has more than 10000 pixels" in warning
    sizes = np.array([5000, 900, 3000])
    means = np.array([10.0, 200.0, 100.0])
    assert select_border_cluster(sizes, means, 10000)[0] == 0  # original would take 1 (brightest)


# ---- noise removal: one test per branch ------------------------------------------------------
def test_noise_unchanged_at_or_below_10_percent():
    m = blocks((100, 100), (0, 0, 1, 1), (50, 50, 10, 99 // 10))  # tiny objects survive
    assert m.mean() <= 0.1
    np.testing.assert_array_equal(remove_noise(m), m)


def test_noise_branch_min_50():
    small, keep, big = (0, 0, 7, 7), (0, 20, 5, 10), (50, 0, 30, 40)  # 49, 50, 1200 px
    m = blocks((100, 100), small, keep, big)
    assert 0.1 < m.mean() <= 0.2
    np.testing.assert_array_equal(remove_noise(m), blocks((100, 100), keep, big))


def test_noise_branch_min_100():
    small, keep, big = (0, 0, 9, 11), (0, 20, 10, 10), (50, 0, 42, 50)  # 99, 100, 2100 px
    m = blocks((100, 100), small, keep, big)
    assert 0.2 < m.mean() <= 0.25
    np.testing.assert_array_equal(remove_noise(m), blocks((100, 100), keep, big))


def test_noise_branch_min_400():
    small, keep, big = (0, 0, 21, 19), (0, 30, 20, 20), (50, 0, 40, 70)  # 399, 400, 2800 px
    m = blocks((100, 100), small, keep, big)
    assert 0.25 < m.mean() <= 0.45
    np.testing.assert_array_equal(remove_noise(m), blocks((100, 100), keep, big))


def test_noise_branch_erode_then_min_600():
    # 26x26 = 676 px erodes to 24x24 = 576 < 600 (removed); 60x90 erodes to 58x88 (kept);
    # a 3x3 speck vanishes under erosion.
    m = blocks((100, 100), (2, 2, 26, 26), (35, 5, 60, 90), (2, 40, 3, 3))
    assert 0.45 < m.mean() <= 0.7
    np.testing.assert_array_equal(remove_noise(m), blocks((100, 100), (36, 6, 58, 88)))


def test_noise_branch_erode_then_min_1000():
    # All ones but a 1-px square moat around a 32x32 island: the island (1024 px) erodes to
    # 30x30 = 900 < 1000 and is removed; the outside erodes next to the moat only (the image
    # edge is not eroded, as with cv2.erode's default border).
    m = np.ones((100, 100), bool)
    m[20, 20:54] = m[53, 20:54] = m[20:54, 20] = m[20:54, 53] = False
    assert m.mean() > 0.7
    expected = np.ones((100, 100), bool)
    expected[19:55, 19:55] = False
    np.testing.assert_array_equal(remove_noise(m), expected)


def test_erosion_matches_opencv(rng):
    from SPM.select import _erode3

    m = rng.random((40, 50)) > 0.3
    ref = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=1).astype(bool)
    np.testing.assert_array_equal(_erode3(m), ref)


# ---- hole filling -----------------------------------------------------------------------------
def test_sparse_mask_dilated_once_by_5x5():
    m = np.zeros((50, 50), bool)
    m[25, 25] = True
    expected = blocks((50, 50), (23, 23, 5, 5))  # once, not twice (the original's dst/iterations slip)
    np.testing.assert_array_equal(fill_glands(m, hole_area=10), expected)


def test_dilation_matches_opencv_single_iteration(rng):
    from SPM.select import _dilate5

    m = rng.random((40, 50)) > 0.97
    kernel = np.ones((5, 5), np.uint8)
    # the original's call, with 2 landing in cv2.dilate's `dst` slot
    ref = cv2.dilate(m.astype(np.uint8), kernel, 2).astype(bool)
    np.testing.assert_array_equal(_dilate5(m), ref)


def test_dense_mask_not_dilated_and_holes_filled():
    m = blocks((60, 60), (0, 0, 60, 30))  # 50% foreground: no dilation
    m[10:14, 10:14] = False  # 16 px hole
    out = fill_glands(m, hole_area=17)
    np.testing.assert_array_equal(out, blocks((60, 60), (0, 0, 60, 30)))
    # a hole of exactly hole_area is kept (strictly smaller holes are filled)
    out = fill_glands(m, hole_area=16)
    assert not out[10:14, 10:14].any()


def test_background_touching_edge_counts_as_hole():
    m = np.ones((40, 40), bool)
    m[:5, :5] = False  # 25 px corner region, touches the image border
    np.testing.assert_array_equal(fill_glands(m, hole_area=26), np.ones((40, 40), bool))


def test_gland_ring_becomes_filled_gland():
    ring = blocks((80, 80), (20, 20, 30, 30))
    ring[25:45, 25:45] = False  # 20x20 lumen, inside a ring 5 px thick
    out = fill_glands(ring, hole_area=300)
    # sparse (< 25 %) so dilated by 2 px each side; the lumen (now 16x16 = 256 px) is filled,
    # the outside (5244 px) is not
    np.testing.assert_array_equal(out, blocks((80, 80), (18, 18, 34, 34)))


def test_small_objects_and_holes_match_skimage(rng):
    m = rng.random((60, 70)) > 0.55
    for size in (2, 5, 20):
        np.testing.assert_array_equal(remove_small_objects(m, size), _sk_objects(m, size))
        np.testing.assert_array_equal(remove_small_holes(m, size), ~_sk_objects(~m, size))


def _sk_objects(m, size):
    """skimage's pre-0.26 remove_small_objects(min_size=size, connectivity=1), via its labelling."""
    lab = measure.label(m, connectivity=1)
    counts = np.bincount(lab.ravel())
    keep = counts >= size
    keep[0] = False
    return keep[lab]


# ---- encoding and the whole rule ---------------------------------------------------------------
def test_encode_proposal_values():
    border = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 0]], bool)
    gland = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0]], bool)
    expected = np.array(
        [[BORDER, BORDER, INTERIOR], [INTERIOR, INTERIOR, BACKGROUND], [BACKGROUND, BACKGROUND, BACKGROUND]]
    )
    np.testing.assert_array_equal(encode_proposal(border, gland), expected)
    assert encode_proposal(border, gland).dtype == np.uint8


def test_mine_proposal_ring_image():
    # Three clusters: bright stroma (0), dark ring (1), mid-gray lumen (2).
    h = w = 200
    labels = np.zeros((h, w), np.int64)
    labels[30:170, 30:170] = 1
    labels[60:140, 60:140] = 2
    gray = np.choose(labels, [220, 60, 180]).astype(np.uint8)
    prop = mine_proposal(gray, labels, k=3, min_border_pixels=10000, hole_area=15000)
    assert prop.cluster == 1 and prop.cluster_gray == 60 and prop.warnings == []
    # ring: 13200 px, fraction 0.33 -> (0.25, 0.45] branch: min 400, no erosion, no dilation;
    # the lumen (6400 px) < 15000 is filled; the outside (20400 px) is not
    expected_gland = blocks((h, w), (30, 30, 140, 140))
    np.testing.assert_array_equal(prop.gland, expected_gland)
    expected_map = np.zeros((h, w), np.uint8)
    expected_map[labels == 1] = BORDER
    expected_map[labels == 2] = INTERIOR
    np.testing.assert_array_equal(prop.proposal_map, expected_map)


def test_mine_proposal_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        mine_proposal(np.zeros((4, 4)), np.zeros((4, 5), np.int64), 2)


def test_fill_enclosed_holes_leaves_edge_components():
    ring = blocks((20, 20), (2, 2, 8, 8))
    ring[4:8, 4:8] = False  # a 16 px hole inside the ring
    ring[0:3, 12:20] = False  # background at the edge stays background
    corner = ~blocks((20, 20), (0, 0, 3, 3))  # a 9 px background piece touching the edge
    filled = fill_enclosed_holes(ring, 17)
    assert filled[4:8, 4:8].all() and not filled[0, 15]
    assert not fill_enclosed_holes(ring, 16)[4:8, 4:8].any()  # "smaller than" is strict
    assert not fill_enclosed_holes(corner, 100)[0, 0]
    assert remove_small_holes(corner, 100)[0, 0]  # SPM's rule fills it (skimage semantics)


def test_a_border_cluster_on_the_image_frame_is_warned_about():
    from SPM.select import frame_coverage

    labels = np.ones((120, 160), np.int64)
    labels[:3] = labels[-3:] = labels[:, :3] = labels[:, -3:] = 0  # the zero-padding frame
    labels[40:60, 40:60] = 2
    gray = np.where(labels == 0, 20, np.where(labels == 2, 90, 200)).astype(np.uint8)
    frame = mine_proposal(gray, labels, 3, min_border_pixels=1000)
    assert frame.cluster == 0 and frame_coverage(frame.border) == 1.0
    assert any("px frame" in w for w in frame.warnings)
    glands = mine_proposal(gray, np.where(labels == 0, 1, labels), 3, min_border_pixels=100)
    assert glands.cluster == 2 and not any("px frame" in w for w in glands.warnings)
