"""MSG for Variation and MSG for Omission on tiny hand-built tensors with hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

import MSG  # noqa: F401
from MSG.decode_heads import MSGOmission, refine_proposal
from MSG.losses import MSGVariationLoss, border_anchor, variation_loss


def emb(*vectors):
    """(1, D, 1, N) embeddings from N D-dim vectors (one row of pixels)."""
    return torch.tensor(vectors, dtype=torch.float32).T[None, :, None, :]


def prop(*values):
    return torch.tensor(values)[None, None, :]


def test_anchor_is_normalised_mean_of_border_and_detached():
    e = emb((1.0, 0.0), (0.0, 1.0), (0.0, 1.0)).requires_grad_(True)
    anchors, valid = border_anchor(e, prop(1, 1, 0))
    assert torch.allclose(anchors, torch.tensor([[1 / math.sqrt(2), 1 / math.sqrt(2)]]))
    assert valid.tolist() == [True] and not anchors.requires_grad


def test_variation_loss_by_hand():
    # border (1,0) -> anchor (1,0); cos = [1, 0, 1, 0]
    e = emb((1.0, 0.0), (0.0, 1.0), (1.0, 0.0), (0.0, 1.0))
    p = prop(1, 2, 0, 0)
    # pull over gland {0,1}: (0 + 1) / 2; push over background {2,3}: (max(0, 1-0.5) + 0) / 2
    assert variation_loss(e, p, margin=0.5).item() == pytest.approx(0.5 + 0.25)
    assert variation_loss(e, p, margin=1.0).item() == pytest.approx(0.5)
    assert MSGVariationLoss(margin=0.5, loss_weight=2.0)(e, p).item() == pytest.approx(1.5)


def test_variation_ignores_255_and_unnormalised_input():
    e = emb((3.0, 0.0), (0.0, 2.0), (5.0, 0.0), (0.0, 1.0))
    assert variation_loss(e, prop(1, 2, 255, 0)).item() == pytest.approx(0.5 + 0.0)


def test_variation_image_without_border_contributes_nothing():
    e1 = emb((1.0, 0.0), (0.0, 1.0), (1.0, 0.0), (0.0, 1.0))
    e2 = emb((0.3, 0.7), (0.1, 0.9), (0.5, 0.5), (0.9, 0.1))
    e = torch.cat([e1, e2])
    p = torch.cat([prop(1, 2, 0, 0), prop(2, 2, 0, 0)])
    assert variation_loss(e, p).item() == pytest.approx(0.75)


def test_variation_no_border_anywhere_is_zero_not_nan():
    e = emb((1.0, 0.0), (0.0, 1.0)).requires_grad_(True)
    loss = variation_loss(e, prop(0, 2))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(e.grad, torch.zeros_like(e))


def test_variation_no_background_has_no_push_term():
    e = emb((1.0, 0.0), (0.6, 0.8))
    assert variation_loss(e, prop(1, 2)).item() == pytest.approx((0 + 0.4) / 2)


def test_variation_gradient_only_through_pixels():
    e = emb((1.0, 0.0), (0.0, 1.0)).requires_grad_(True)
    variation_loss(e, prop(1, 2)).backward()
    # d/de1 of (1 - <e1/|e1|, a>)/2 at e1=(0,1), a=(1,0): -(a - cos*e1)/2 = (-0.5, 0)
    assert torch.allclose(e.grad[0, :, 0, 1], torch.tensor([-0.5, 0.0]))
    # the border pixel sits on the anchor: zero gradient (the anchor itself carries none)
    assert torch.allclose(e.grad[0, :, 0, 0], torch.zeros(2))


# ---- omission ---------------------------------------------------------------------------------
OMISSION_E = emb((1.0, 0.0), (0.9, 0.1), (0.0, 1.0), (0.1, 0.9), (0.6, 0.8))
OMISSION_P = prop(1, 0, 0, 0, 2)


def test_refine_relabels_background_closer_to_anchor_than_prototype():
    # anchor a = (1,0); prototype b = normalize(mean(n(0.9,0.1), (0,1), n(0.1,0.9))) ~ (0.465, 0.886)
    # pixel 1: cos_a 0.994 > cos_b 0.560 -> relabel; pixels 2, 3: cos_a 0 / 0.110 < cos_b
    assert refine_proposal(OMISSION_E, OMISSION_P).tolist() == [[[False, True, False, False, False]]]


def test_refine_delta_margin():
    # 0.994 > 0.560 + 0.4 but not > 0.560 + 0.5
    assert refine_proposal(OMISSION_E, OMISSION_P, delta=0.4)[0, 0, 1]
    assert not refine_proposal(OMISSION_E, OMISSION_P, delta=0.5).any()


def test_refine_band_limits_distance_to_glands():
    e = emb((1.0, 0.0), (0.0, 1.0), (0.0, 1.0), (0.1, 0.9), (0.9, 0.1))
    p = prop(1, 0, 0, 0, 0)  # the near-anchor background pixel is 4 px from the gland
    assert refine_proposal(e, p, band=None)[0, 0, 4]
    assert not refine_proposal(e, p, band=3).any()
    assert refine_proposal(e, p, band=4)[0, 0, 4]


def test_refine_empty_classes_relabel_nothing():
    no_border = prop(2, 0, 0, 0, 2)
    assert not refine_proposal(OMISSION_E, no_border).any()
    no_background = prop(1, 2, 2, 255, 2)
    assert not refine_proposal(OMISSION_E, no_background).any()


def test_omission_target_at_full_resolution():
    omission = MSGOmission(delta=0.0, band=None, start_iter=10)
    assert not omission.active(9) and omission.active(10)
    small = OMISSION_P[0]  # (1, 5)
    full = small.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1)[None]  # (1, 2, 10)
    full[0, 0, 3] = 255  # an ignored pixel inside the relabelled cell stays ignored
    target, stats = omission(OMISSION_E, small[None], full)
    expected = torch.tensor([[1, 1, 1, 255, 0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]])
    assert torch.equal(target[0], expected)
    # the relabelled cell covers 4 full-resolution pixels, one of them ignore: 3 of the 11 background
    assert stats["relabel_frac"].item() == pytest.approx(3 / 11)


def test_omission_band_in_input_pixels_scales_with_stride():
    omission = MSGOmission(band=16)
    e = emb((1.0, 0.0), (0.0, 1.0), (0.0, 1.0), (0.1, 0.9), (0.9, 0.1))
    small = prop(1, 0, 0, 0, 0)
    full8 = small[0].repeat_interleave(8, dim=1)[None]  # stride 8: band 16 px -> 2 embedding px
    target, _ = omission(e, small, full8)
    assert target[0, 0, 32:].sum() == 0
    full2 = small[0].repeat_interleave(2, dim=1)[None]  # stride 2: band 16 px -> 8 embedding px
    target, _ = omission(e, small, full2)
    assert target[0, 0, 8:].tolist() == [1, 1]
