"""Self-supervised backbone pretraining (MSG/selfsup, tools/pretrain.py) on synthetic images."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from torch.nn import functional as F

from common.io import InputError
from MSG.selfsup.trainer import build_model, lr_at, pretrain
from MSG.selfsup.vicregl import vicreg_terms
from MSG.selfsup.views import (
    ViewConfig,
    ViewGeometry,
    apply_geometry,
    make_pair,
    overlap_points,
    sample_geometry,
    source_to_view,
    stain_jitter,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "selfsup" / "vicregl_wres38w025_glas-half.py"


def test_view_coordinates_follow_crop_resize_flip_and_rotation():
    """Sampling a view at the mapped coordinates of a source point returns the source value there.

    The image is the linear ramp f(x, y) = 3x + 5y (pixel centres at i + 0.5), which bilinear,
    antialiased resizing reproduces exactly away from the borders, so every geometry can be checked.
    """
    h, w = 60, 90
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    image = (3 * xs + 5 * ys).float()[None].expand(3, h, w).contiguous()
    rng = np.random.default_rng(0)
    cfg = ViewConfig(size=24, area=(0.2, 0.6))
    seen = set()
    for _ in range(40):
        g = sample_geometry(rng, h, w, cfg)
        seen.add((g.hflip, g.vflip, g.k))
        view = apply_geometry(image, g, cfg.size)
        margin_x, margin_y = 0.25 * g.w, 0.25 * g.h  # inside the box, away from the resize border
        pts = torch.tensor([[g.x0 + margin_x, g.y0 + margin_y], [g.x0 + g.w - margin_x, g.y0 + g.h / 2],
                            [g.x0 + g.w / 2, g.y0 + g.h - margin_y]])
        sampled = F.grid_sample(view[None], source_to_view(pts, g).view(1, 1, -1, 2), align_corners=False)[0, 0, 0]
        torch.testing.assert_close(sampled, 3 * pts[:, 0] + 5 * pts[:, 1], rtol=0, atol=0.05 * (3 + 5) * g.w / 24 + 0.1)
    assert len(seen) >= 12  # flips and quarter turns in most combinations


def test_view_pairs_always_overlap_and_points_lie_in_both_views():
    rng = np.random.default_rng(1)
    image = torch.rand(3, 50, 70)
    for _ in range(100):
        v1, v2, g1, g2 = make_pair(image, rng, ViewConfig(size=16))
        assert v1.shape == v2.shape == (3, 16, 16) and 0 <= v1.min() and v1.max() <= 1
        pts = overlap_points(g1, g2, 5)
        for g in (g1, g2):
            assert source_to_view(pts, g).abs().max() <= 1
    with pytest.raises(ValueError, match="do not overlap"):
        overlap_points(ViewGeometry(0, 0, 10, 10), ViewGeometry(20, 20, 10, 10), 3)


def test_stain_jitter_identity_and_direction():
    rgb = torch.tensor([[0.55, 0.85, 0.95], [0.25, 0.55, 0.75], [0.6, 0.2, 0.9]]).T.reshape(3, 1, 3)  # H&E-like
    same = stain_jitter(rgb, torch.ones(3), torch.zeros(3))
    torch.testing.assert_close(same, rgb, atol=2e-3, rtol=0)
    more_h = stain_jitter(rgb, torch.tensor([1.3, 1.0, 1.0]), torch.zeros(3))
    assert (more_h.sum(0) < rgb.sum(0)).all()  # more haematoxylin: darker everywhere


def test_vicreg_terms_hand_values():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])  # per-dim var 2/3 and 6, no covariance
    terms = vicreg_terms(z, z, eps=0.0)
    assert terms["inv"] == 0
    assert terms["var"].item() == pytest.approx((1 - (2 / 3) ** 0.5) / 2)  # only dim 0 has std < 1
    assert terms["cov"].item() == pytest.approx(0.0)
    correlated = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0], [-2.0, -2.0]])  # var 10/3 each, cov 10/3
    terms = vicreg_terms(correlated, correlated + 1, eps=0.0)
    assert terms["inv"].item() == pytest.approx(1.0)
    assert terms["cov"].item() == pytest.approx(2 * (2 * (10 / 3) ** 2) / 2)  # two views, (sum off-diag^2) / D


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(i, 1.0, 100, 10) for i in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:])) and lrs[-1] < 0.02


def _tiny_cfg(image_dir: Path, **schedule) -> Config:
    cfg = Config.fromfile(str(CONFIG))
    cfg.merge_from_dict({
        "backbone.width_mult": 0.0625, "in_channels": 256, "channels_last": False,
        "data.image_dir": str(image_dir), "views.size": 32, "method.global_dims": (32, 32),
        "method.local_dims": (32, 16), "method.grid": 3, "method.global_weight": 0.5,  # both terms
    })
    cfg.schedule.update(dict(iters=3, batch_size=4, warmup_iters=1, log_interval=1, checkpoint_interval=1))
    cfg.schedule.update(schedule)
    return cfg


@pytest.fixture
def images(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        img = np.full((80, 100, 3), (200, 170, 220), np.uint8)  # pink stroma (BGR)
        for _ in range(4):
            cv2.circle(img, (int(rng.integers(10, 90)), int(rng.integers(10, 70))), 12, (150, 60, 90), 4)
        cv2.imwrite(str(folder / f"img_{i}.png"), img)
    return folder


def _stop_at(iteration: int):
    """A log callback that interrupts the run (as SIGTERM does) when ``iteration`` is logged."""

    def log(line: str) -> None:
        if line.startswith(f"iter {iteration}/"):
            raise SystemExit(143)

    return log


def test_pretrain_resume_equals_uninterrupted_and_backbone_loads(images: Path, tmp_path: Path):
    full = pretrain(_tiny_cfg(images), tmp_path / "full", log=lambda s: None)
    early = tmp_path / "early"
    cfg = _tiny_cfg(images, checkpoint_interval=2)
    with pytest.raises(SystemExit):
        pretrain(cfg, early, log=_stop_at(3))
    assert torch.load(early / "latest.pth", weights_only=True)["iter"] == 2
    assert not (early / "backbone.pth").exists()
    with pytest.raises(InputError, match="different configuration"):
        pretrain(_tiny_cfg(images, iters=4, checkpoint_interval=2), early, resume=True, log=lambda s: None)
    logs: list[str] = []
    resumed = pretrain(cfg, early, resume=True, log=logs.append)
    assert any(s.startswith("resumed from") for s in logs)
    a = torch.load(full, weights_only=True)["state_dict"]
    b = torch.load(resumed, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    rows = [json.loads(x) for x in (early / "scalars.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in rows] == [1, 2, 3]

    # the segmentation backbone loads every weight through init_cfg=Pretrained
    backbone_cfg = dict(type="WideRes38", width_mult=0.0625, norm_cfg=dict(type="BN", requires_grad=True),
                        init_cfg=dict(type="Pretrained", checkpoint=str(full)))
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, a[k], rtol=0, atol=0)
    meta = torch.load(full, weights_only=True)["meta"]
    assert meta["iters"] == 3 and meta["images"] == ["img_0.png", "img_1.png", "img_2.png"]


def test_pretrain_learns_and_stops_on_divergence(images: Path, tmp_path: Path):
    scalars = tmp_path / "run" / "scalars.jsonl"
    pretrain(_tiny_cfg(images, iters=12, batch_size=6), tmp_path / "run", log=lambda s: None)
    rows = [json.loads(x) for x in scalars.read_text().splitlines()]
    assert np.mean([r["loss"] for r in rows[-3:]]) < np.mean([r["loss"] for r in rows[:3]])
    cfg = _tiny_cfg(images, iters=30)
    cfg.optim.lr = 1e12
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        pretrain(cfg, tmp_path / "diverged", log=lambda s: None)
    assert not (tmp_path / "diverged" / "backbone.pth").exists()


@pytest.mark.parametrize(("pretrain_config", "segmentation_config"), [
    ("configs/selfsup/vicregl_wres38w025_glas-half.py",
     "configs/pspnet_mssg/pspnet_wres38w025-d8_histo-half128-selfsup_cpu.py"),
    ("configs/selfsup/vicregl_wres38_glas.py", "configs/pspnet_mssg/pspnet_wres38-d8_10k_histo.py"),
])
def test_pretraining_configs_write_the_backbone_their_segmentation_config_loads(pretrain_config, segmentation_config):
    pre = Config.fromfile(ROOT / pretrain_config)
    seg = Config.fromfile(ROOT / segmentation_config).model.backbone
    seg.pop("init_cfg", None)
    with torch.device("meta"):  # full width: shapes only, no memory
        learner = build_model(pre)
        target = MODELS.build(seg)
    written = learner.backbone.state_dict()
    wanted = target.state_dict()
    assert written.keys() == wanted.keys()
    assert all(written[k].shape == wanted[k].shape for k in wanted)
    assert pre.in_channels == seg.width_mult * 4096
