"""WideRes38, MSGPSPHead and MSSGEncoderDecoder: shapes, names, losses, the faithful config."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import MSG  # noqa: F401
from MSG.backbones import WideRes38

ROOT = Path(__file__).resolve().parents[2]
FAITHFUL = ROOT / "configs" / "pspnet_mssg" / "pspnet_wres38-d8_10k_histo.py"
TINY = ROOT / "tests" / "data" / "tiny_mssg_cpu.py"


def test_wres38_outputs_stride8_and_channels():
    net = WideRes38(width_mult=0.125).eval()
    with torch.no_grad():
        outs = net(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 24), (1, 64, 8, 12), (1, 128, 8, 12), (1, 512, 8, 12)]
    assert net.channels == (32, 64, 128, 512)
    assert len(WideRes38(width_mult=0.125, out_indices=(3,)).eval()(torch.rand(1, 3, 32, 32))) == 1


def test_wres38_published_layout_and_names():
    net = WideRes38()
    sd = net.state_dict()
    expected_shapes = {
        "conv1a.weight": (64, 3, 3, 3),
        "b2.conv_branch1.weight": (128, 64, 1, 1),
        "b3_2.conv_branch2b1.weight": (256, 256, 3, 3),
        "b4_5.bn_branch2a.weight": (512,),
        "b5.conv_branch2a.weight": (512, 512, 3, 3),
        "b5.conv_branch2b1.weight": (1024, 512, 3, 3),
        "b6.conv_branch2a.weight": (512, 1024, 1, 1),
        "b6.conv_branch2b1.weight": (1024, 512, 3, 3),
        "b6.conv_branch2b2.weight": (2048, 1024, 1, 1),
        "b7.conv_branch2b2.weight": (4096, 2048, 1, 1),
        "bn7.running_var": (4096,),
    }
    for key, shape in expected_shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert "b2_1.conv_branch1.weight" not in sd  # identity shortcut when shapes agree
    assert net.b5.conv_branch2b1.dilation == (2, 2) and net.b6.conv_branch2b1.dilation == (4, 4)
    assert net.b4.conv_branch2a.stride == (2, 2) and net.b5.conv_branch2a.stride == (1, 1)
    assert net.b6.dropout_2b1.p == 0.3 and net.b7.dropout_2b2.p == 0.5
    blocks = {k.split(".")[0] for k in sd}
    assert blocks == {"conv1a", "b2", "b2_1", "b2_2", "b3", "b3_1", "b3_2", "b4", *(f"b4_{i}" for i in range(1, 6)),
                      "b5", "b5_1", "b5_2", "b6", "b7", "bn7"}


def test_wres38_pretrained_missing_file_is_clear_error(tmp_path):
    net = WideRes38(width_mult=0.0625, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "res38d.pth")))
    with pytest.raises(FileNotFoundError, match=r"res38d\.pth.*not found"):
        net.init_weights()


def test_wres38_loads_res38d_style_checkpoint_and_reports_keys(tmp_path, monkeypatch):
    import MSG.backbones.wide_res38 as wres

    logged = []
    monkeypatch.setattr(wres, "print_log", lambda msg, **_: logged.append(msg))
    src = WideRes38(width_mult=0.0625)
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in src.state_dict().items()}
    state["fc8.weight"] = torch.zeros(3)  # a classifier the backbone does not have
    del state["bn7.weight"]
    torch.save(state, tmp_path / "res38d.pth")
    net = WideRes38(width_mult=0.0625, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "res38d.pth")))
    net.init_weights()
    assert torch.equal(net.b4_3.conv_branch2a.weight, state["b4_3.conv_branch2a.weight"])
    out = "\n".join(logged)
    assert "missing keys: ['bn7.weight']" in out and "unexpected keys: ['fc8.weight']" in out


def test_wres38_refuses_a_checkpoint_that_would_silently_start_from_scratch(tmp_path):
    from common.io import InputError

    unrelated = tmp_path / "classifier.pth"
    torch.save({"state_dict": {"features.0.weight": torch.zeros(8, 3, 3, 3)}}, unrelated)
    net = WideRes38(width_mult=0.0625, init_cfg=dict(type="Pretrained", checkpoint=str(unrelated)))
    before = net.conv1a.weight.detach().clone()
    with pytest.raises(InputError, match=r"classifier\.pth: holds none of the WideRes38 backbone's weights "
                                         r"\(its keys: features\.0\.weight\)"):
        net.init_weights()
    assert torch.equal(net.conv1a.weight, before)

    wider = tmp_path / "backbone.pth"
    torch.save({"state_dict": WideRes38(width_mult=0.125).state_dict(), "meta": {}}, wider)
    net = WideRes38(width_mult=0.0625, init_cfg=dict(type="Pretrained", checkpoint=str(wider)))
    with pytest.raises(InputError, match=r"backbone\.pth: conv1a\.weight is \(8, 3, 3, 3\), not the \(4, 3, 3, 3\) "
                                         r"of WideRes38 \(width_mult 0\.0625\): a checkpoint of another width"):
        net.init_weights()


def test_training_preflight_refuses_a_backbone_of_another_width(tmp_path):
    from common.io import InputError
    from MSG.engine.preflight import check_train_inputs

    for folder in ("images", "proposals"):
        (tmp_path / folder).mkdir()
    cfg = Config.fromfile(TINY)
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    cfg.val_cfg = None
    width = cfg.model.backbone.width_mult
    wider = tmp_path / "backbone.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in WideRes38(width_mult=2 * width).state_dict().items()}},
               wider)
    cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=str(wider))
    with pytest.raises(InputError, match=rf"not the .* of WideRes38 \(width_mult {width:g}\)"):
        check_train_inputs(cfg)
    torch.save({"state_dict": WideRes38(width_mult=width).state_dict()}, wider)
    with pytest.raises(InputError, match="no training images"):  # the weights fit: the next check speaks
        check_train_inputs(cfg)


def _tiny_model():
    cfg = Config.fromfile(str(TINY))
    return MODELS.build(cfg.model)


def _samples(proposals):
    return [SegDataSample(gt_sem_seg=PixelData(data=p[None].long()),
                          metainfo=dict(img_shape=p.shape, ori_shape=p.shape, pad_shape=p.shape)) for p in proposals]


def test_head_shapes_and_unit_embeddings():
    model = _tiny_model().eval()
    feats = model.extract_feat(torch.rand(2, 3, 64, 64))
    logits, emb = model.decode_head.forward_with_embedding(feats)
    assert logits.shape == (2, 2, 8, 8) and emb.shape == (2, 8, 8, 8)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2, 8, 8))
    assert torch.equal(model.decode_head(feats), logits)


def test_head_keeps_channels_last_into_the_bottleneck():
    """The PPM concat stays channels-last in a channels-last head (no copy of the widest conv input)
    and the head computes what it computes in NCHW."""
    torch.manual_seed(0)
    model = _tiny_model().eval()
    feats = [f.detach() for f in model.extract_feat(torch.rand(2, 3, 64, 64))]
    logits_nchw = model.decode_head(feats)
    head = model.decode_head.to(memory_format=torch.channels_last)
    seen = []
    head.bottleneck.conv.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    logits_cl = head([f.contiguous(memory_format=torch.channels_last) for f in feats])
    assert seen == [True]
    torch.testing.assert_close(logits_cl, logits_nchw, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_pyramid_pool_equals_adaptive_pooling_and_its_gradient(channels_last):
    """One matrix product gives PyTorch's adaptive pooling (uneven windows included) and its gradient."""
    from torch.nn import functional as F

    from MSG.decode_heads.msg_psp_head import pyramid_pool

    torch.manual_seed(0)
    x = torch.randn(2, 5, 13, 17, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    pooled = pyramid_pool(ours, (1, 2, 3, 6))
    expected = [F.adaptive_avg_pool2d(ref, s) for s in (1, 2, 3, 6)]
    for p, e in zip(pooled, expected, strict=True):
        torch.testing.assert_close(p, e)
        assert p.is_contiguous(memory_format=torch.channels_last) == channels_last or p.shape[-1] == 1
    weights = [torch.randn_like(e) for e in expected]
    sum((p * w).sum() for p, w in zip(pooled, weights, strict=True)).backward()
    sum((e * w).sum() for e, w in zip(expected, weights, strict=True)).backward()
    torch.testing.assert_close(ours.grad, ref.grad)


def test_auxiliary_losses_are_mmsegs_with_fp32_logits():
    """The auxiliary head's losses (resized in fp32 NCHW) equal mmseg's own, names included."""
    from mmseg.models.segmentors.encoder_decoder import EncoderDecoder

    torch.manual_seed(0)
    model = _tiny_model().eval()  # no dropout: both computations see the same logits
    proposals = torch.zeros(2, 64, 64, dtype=torch.long)
    proposals[:, 16:48, 16:48] = 1
    feats = model.extract_feat(torch.rand(2, 3, 64, 64))
    ours = model._auxiliary_head_forward_train(feats, _samples(proposals))
    reference = EncoderDecoder._auxiliary_head_forward_train(model, feats, _samples(proposals))
    assert set(ours) == set(reference) == {"aux.loss_ce", "aux.acc_seg"}
    for key in ours:
        torch.testing.assert_close(ours[key], reference[key])


def test_segmentor_losses_before_and_after_omission_start():
    torch.manual_seed(0)
    model = _tiny_model().train()
    proposals = torch.zeros(2, 64, 64, dtype=torch.long)
    proposals[:, 16:48, 16:48] = 1
    proposals[:, 24:40, 24:40] = 2
    proposals[1, :4] = 255
    inputs = torch.rand(2, 3, 64, 64)
    model.current_iter = 0
    losses = model.loss(inputs, _samples(proposals))
    assert {"decode.loss_ce", "decode.loss_variation", "decode.acc_seg", "decode.cos_gap", "aux.loss_ce"} <= set(losses)
    assert "decode.relabel_frac" not in losses
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    assert model.decode_head.embed_head[1].weight.grad is not None  # the variation loss reaches the embeddings
    model.current_iter = 2  # omission start_iter in the tiny config
    losses = model.loss(inputs, _samples(proposals))
    assert 0.0 <= float(losses["decode.relabel_frac"]) <= 1.0


def test_auxiliary_head_trained_on_the_same_target():
    model = _tiny_model()
    feats = model.extract_feat(torch.rand(2, 3, 64, 64))
    proposal = torch.zeros(2, 64, 64, dtype=torch.long)
    proposal[:, 10:30, 10:30] = 2
    proposal[:, 10:12, 10:30] = 1
    proposal[:, 60:] = 255
    _, targets = model.decode_head.loss_msg(feats, _samples(proposal), iteration=0)
    target = targets[0].gt_sem_seg.data[0]
    assert set(target.unique().tolist()) == {0, 1, 255}
    assert torch.equal(target == 1, (proposal[0] == 1) | (proposal[0] == 2))


def test_plain_predict_is_two_class():
    model = _tiny_model().eval()
    sample = SegDataSample(metainfo=dict(img_shape=(72, 90), ori_shape=(72, 90), pad_shape=(72, 90)))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[torch.randint(0, 255, (3, 72, 90), dtype=torch.uint8)],
                                   data_samples=[sample]))
    assert out[0].pred_sem_seg.data.shape == (1, 72, 90) and out[0].seg_logits.data.shape == (2, 72, 90)


def test_faithful_config_forward_backward_on_cpu():
    cfg = Config.fromfile(str(FAITHFUL))
    assert cfg.model.backbone.init_cfg.checkpoint == "weights/res38d.pth"
    assert cfg.train_dataloader.batch_size == 8 and cfg.optim_wrapper.optimizer.lr == 0.005
    assert cfg.model.test_cfg == dict(mode="slide", crop_size=(320, 320), stride=(256, 256))
    cfg.norm_cfg = dict(type="BN", requires_grad=True)
    for part in ("backbone", "decode_head", "auxiliary_head"):
        cfg.model[part].norm_cfg = cfg.norm_cfg
    model = MODELS.build(cfg.model).train()
    n_params = sum(p.numel() for p in model.parameters())
    assert 130e6 < n_params < 160e6  # documented in the README
    proposal = torch.zeros(2, 256, 256, dtype=torch.long)
    proposal[:, 64:192, 64:192] = 2
    proposal[:, 64:80, 64:192] = 1
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 256, 256), dtype=torch.uint8)] * 2,
                                        data_samples=_samples(proposal)), training=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    sum(v for k, v in losses.items() if "loss" in k).backward()
    assert model.backbone.conv1a.weight.grad is not None


def test_omission_fill_teaches_the_lumen_enclosed_by_the_predicted_ring():
    """fill_holes: background enclosed by prediction or R (holes < area, not at the patch edge) becomes gland."""
    from MSG.decode_heads.msg_omission import fill_target_holes

    target = torch.zeros(1, 20, 20, dtype=torch.long)
    target[0, 0, :] = 255  # padding stays ignore
    predicted = torch.zeros(1, 20, 20, dtype=torch.bool)
    predicted[0, 4:12, 4:12] = True
    predicted[0, 6:10, 6:10] = False  # a predicted ring around a 16 px lumen
    target[0, 14:19, 14:19] = 1
    target[0, 16, 16] = 0  # a 1 px hole inside a proposal gland
    filled = fill_target_holes(target, predicted, area=17)
    assert filled[0, 6:10, 6:10].all() and filled[0, 16, 16] and int(filled.sum()) == 17
    assert (target[0, 6:10, 6:10] == 1).all() and (target[0, 0] == 255).all()
    assert int((target == 1).sum()) == 25 + 16  # the predicted ring itself is not made a target
    small = torch.zeros(1, 20, 20, dtype=torch.long)
    assert not fill_target_holes(small, predicted, area=16).any()  # "smaller than" is strict


def test_omission_fill_in_the_head_and_grouping_without_variation():
    torch.manual_seed(0)
    cfg = Config.fromfile(str(TINY))
    cfg.model.decode_head.omission.fill_holes = 200
    cfg.model.decode_head.omission.delta = 2.0  # no relabelling by embeddings: the fill alone acts
    model = MODELS.build(cfg.model).train()
    proposal = torch.zeros(2, 64, 64, dtype=torch.long)
    proposal[:, 16:48, 16:48] = 1
    proposal[:, 24:40, 24:40] = 0  # a ring proposal whose 256 px lumen is background
    with torch.no_grad():  # predict background everywhere: only R encloses holes
        model.decode_head.conv_seg.weight.zero_()
        model.decode_head.conv_seg.bias.copy_(torch.tensor([1.0, 0.0]))
    feats = model.extract_feat(torch.rand(2, 3, 64, 64))
    losses, _ = model.decode_head.loss_msg(feats, _samples(proposal), iteration=10)
    assert float(losses["fill_frac"]) == 0.0  # 256 px >= 200: not filled
    model.decode_head.omission.fill_holes = 257
    losses, targets = model.decode_head.loss_msg(feats, _samples(proposal), iteration=10)
    assert (targets[0].gt_sem_seg.data[0, 24:40, 24:40] == 1).all()

    # Without Variation, Omission groups by the bottleneck features: the (untrained) embedding
    # branch does not change the refined proposal.
    cfg = Config.fromfile(str(TINY))
    cfg.model.decode_head.variation = None
    model = MODELS.build(cfg.model).train()
    proposal[:, 24:40, 24:40] = 2
    feats = [f.detach() for f in model.extract_feat(torch.rand(2, 3, 64, 64))]
    _, before = model.decode_head.loss_msg(feats, _samples(proposal), iteration=10)
    with torch.no_grad():
        model.decode_head.embed_head[1].weight.normal_()
    _, after = model.decode_head.loss_msg(feats, _samples(proposal), iteration=10)
    assert torch.equal(before[0].gt_sem_seg.data, after[0].gt_sem_seg.data)


def test_interior_weight_scales_the_ce_at_the_proposals_interior_only():
    """interior_weight w: the decode CE is mean over pixels of w * CE at P = 2 and CE elsewhere."""
    torch.manual_seed(0)
    cfg = Config.fromfile(str(TINY))
    cfg.model.decode_head.omission = None
    cfg.model.decode_head.variation = None
    model = MODELS.build(cfg.model).eval()  # eval: no dropout, so both passes see the same logits
    proposal = torch.zeros(2, 64, 64, dtype=torch.long)
    proposal[:, 16:48, 16:48] = 1
    proposal[:, 24:40, 24:40] = 2
    proposal[1, :8] = 255
    feats = [f.detach() for f in model.extract_feat(torch.rand(2, 3, 64, 64))]
    plain, _ = model.decode_head.loss_msg(feats, _samples(proposal), iteration=0)
    model.decode_head.interior_weight = 3.0
    weighted, _ = model.decode_head.loss_msg(feats, _samples(proposal), iteration=0)

    logits = model.decode_head(feats).float()
    up = torch.nn.functional.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False)
    target = torch.where(proposal == 255, 255, (proposal > 0).long())
    ce = torch.nn.functional.cross_entropy(up, target, ignore_index=255, reduction="none")
    valid = proposal != 255
    weight = torch.where(proposal == 2, 3.0, 1.0)
    torch.testing.assert_close(plain["loss_ce"], ce[valid].mean())
    torch.testing.assert_close(weighted["loss_ce"], (weight * ce)[valid].sum() / valid.sum())
    assert float(weighted["loss_ce"].detach()) > float(plain["loss_ce"].detach())
    with pytest.raises(ValueError, match="interior_weight must be > 0"):
        cfg.model.decode_head.interior_weight = 0
        MODELS.build(cfg.model)
