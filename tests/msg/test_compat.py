"""The mmcv.ops stand-in: point_sample equals mmcv's own formula; other ops fail clearly."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from MSG.compat import mmcv_ops


def _mmcv_point_sample_module():
    """mmcv's pure-Python point_sample.py, loaded from its file (its package needs mmcv._ext)."""
    spec = importlib.util.find_spec("mmcv")
    path = Path(spec.origin).parent / "ops" / "point_sample.py"
    mod_spec = importlib.util.spec_from_file_location("_mmcv_point_sample_ref", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("points_shape", [(2, 7, 2), (2, 3, 5, 2)])
def test_point_sample_equals_mmcv(align_corners, points_shape):
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 4, 9, 11, generator=g)
    points = torch.rand(*points_shape, generator=g)
    ref = _mmcv_point_sample_module().point_sample(feats, points, align_corners=align_corners)
    ours = mmcv_ops.point_sample(feats, points, align_corners=align_corners)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_point_sample_by_hand():
    feats = torch.arange(4.0).reshape(1, 1, 2, 2)  # [[0, 1], [2, 3]]
    # centre of the image with align_corners=False: mean of the 4 pixels
    out = mmcv_ops.point_sample(feats, torch.tensor([[[0.5, 0.5]]]))
    assert out.shape == (1, 1, 1) and out.item() == pytest.approx(1.5)
    # pixel (x=1, y=0) centre is at (0.75, 0.25)
    assert mmcv_ops.point_sample(feats, torch.tensor([[[0.75, 0.25]]])).item() == pytest.approx(1.0)
    assert torch.equal(
        mmcv_ops.point_sample(feats, torch.tensor([[[0.75, 0.25]]])),
        F.grid_sample(feats, torch.tensor([[[[0.5, -0.5]]]]), align_corners=False).squeeze(3),
    )


def test_other_ops_raise_clear_error():
    module = mmcv_ops.build_standin()
    with pytest.raises(mmcv_ops.MissingCompiledOpError, match=r"sigmoid_focal_loss.*MMCV_WITH_OPS=1"):
        module.sigmoid_focal_loss(torch.zeros(1), torch.zeros(1))
    with pytest.raises(mmcv_ops.MissingCompiledOpError, match="CrissCrossAttention"):
        module.CrissCrossAttention(64)
    with pytest.raises(AttributeError):
        module.__wrapped__  # noqa: B018 - dunder lookups stay AttributeErrors


@pytest.mark.skipif(mmcv_ops.compiled_ops_available(), reason="full mmcv installed: the stand-in is not used")
def test_mmseg_models_import_with_standin():
    import mmseg.models  # noqa: F401

    import MSG  # noqa: F401 - installs the stand-in

    assert getattr(sys.modules["mmcv.ops"], "MSSG_STANDIN", False)
    from mmcv.ops import point_sample

    assert point_sample is mmcv_ops.point_sample
