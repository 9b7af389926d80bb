"""bf16 training/inference (BF16OptimWrapper, test_cfg.precision) and the TTA pipeline helpers."""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import os
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS, OPTIM_WRAPPERS

from common import precision
from common.precision import BF16_ENV, bf16_faster, bf16_override, bf16_supported
from MSG.datasets.tta import (
    OEEM_RATIOS,
    config_tta_pipeline,
    positive_ratio,
    tta_cost,
    tta_ratios,
    with_tta_ratios,
    without_loading,
)
from MSG.engine.optim_wrapper import BF16OptimWrapper
from tests.msg.test_msg_models import _samples
from tests.tooling import load_tool

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny_mssg_cpu.py"
FAITHFUL = ROOT / "configs" / "pspnet_mssg" / "pspnet_wres38-d8_10k_histo.py"
CPU = ROOT / "configs" / "pspnet_mssg" / "pspnet_wres38w025-d8_2k_histo_cpu.py"
# bf16 against fp32 from the same weights and batch: the loss of the first step (only the forward
# precision differs) agrees within 1% (measured 0.15% with oneDNN's bf16 kernels, 0.10% with the
# kernels a CPU without native bf16 falls back to). After an update the trajectories part (Omission's
# relabelling is a threshold): even fp32 moves 2% by the third step when oneDNN is switched off, and
# emulated bf16 3% by the second, so later steps are checked for fitting the batch, not for equality.
BF16_FIRST_LOSS_RTOL = 0.01
ONEDNN = pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "no-onednn"])


def _batch():
    """Two images whose glands are darker than the background (learnable), with 0/1/2 proposals."""
    gen = torch.Generator().manual_seed(0)
    proposals = torch.zeros(2, 64, 64, dtype=torch.long)
    proposals[:, 16:48, 16:48] = 2
    proposals[:, 16:20, 16:48] = 1
    base = torch.where(proposals > 0, 80.0, 200.0)[:, None].expand(2, 3, 64, 64)
    images = (base + 20 * torch.randn(2, 3, 64, 64, generator=gen)).clamp(0, 255).to(torch.uint8)
    return list(images), proposals


def _train_losses(wrapper_type: type, steps: int = 4) -> tuple[list[float], bool]:
    """Losses of ``steps`` SGD steps of the tiny MSSG model under ``wrapper_type``, and whether it ran bf16."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(TINY)).model).train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0  # compare precisions, not dropout draws
    model.current_iter = 10**9  # Omission active: every MSG term runs under autocast
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    wrapper = wrapper_type(optimizer=optimizer)
    bf16 = getattr(wrapper, "bf16", False)
    images, proposals = _batch()
    losses = []
    for _ in range(steps):
        with wrapper.optim_context(model):
            data = model.data_preprocessor(dict(inputs=images, data_samples=_samples(proposals)), True)
            parts = model.loss(data["inputs"], data["data_samples"])
            feature_dtype = model.extract_feat(data["inputs"])[-1].dtype
            assert feature_dtype == (torch.bfloat16 if bf16 else torch.float32)
        loss = sum(v for k, v in parts.items() if "loss" in k)
        assert loss.dtype == torch.float32
        wrapper.update_params(loss)
        losses.append(loss.item())
    return losses, bf16


@ONEDNN
def test_bf16_fallback_is_exactly_fp32(monkeypatch, onednn):
    """Without bf16 (a CPU without native bf16, or MSSG_BF16=0) the wrapper is plain fp32, bit for bit."""
    monkeypatch.setenv(BF16_ENV, "0")
    with torch.backends.mkldnn.flags(enabled=onednn):
        fp32, _ = _train_losses(OptimWrapper)
        fallback, bf16 = _train_losses(BF16OptimWrapper)
    assert not bf16
    assert fallback == fp32


@ONEDNN
def test_bf16_training_tracks_fp32(monkeypatch, onednn):
    """bf16 forced (MSSG_BF16=1), with oneDNN's kernels and with those a CPU without native bf16 uses."""
    monkeypatch.setenv(BF16_ENV, "1")
    with torch.backends.mkldnn.flags(enabled=onednn):
        fp32, _ = _train_losses(OptimWrapper)
        bf16_losses, bf16 = _train_losses(BF16OptimWrapper)
    assert bf16
    assert bf16_losses[0] == pytest.approx(fp32[0], rel=BF16_FIRST_LOSS_RTOL)
    for losses in (fp32, bf16_losses):  # both precisions fit the batch: the comparison covers moving weights
        assert all(map(math.isfinite, losses)) and min(losses[1:]) < 0.97 * losses[0]


def test_bf16_detection_override(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv(BF16_ENV, raising=False)
    assert bf16_override() is None and bf16_supported(cpu) == bf16_faster(cpu)
    monkeypatch.setenv(BF16_ENV, "0")
    assert not bf16_supported(cpu) and not BF16OptimWrapper(optimizer=torch.optim.SGD([torch.zeros(1)], lr=1)).bf16
    monkeypatch.setenv(BF16_ENV, "1")
    assert bf16_supported(cpu) and BF16OptimWrapper(optimizer=torch.optim.SGD([torch.zeros(1)], lr=1)).bf16
    monkeypatch.setenv(BF16_ENV, "yes")
    with pytest.raises(ValueError, match="MSSG_BF16 must be 0"):
        bf16_supported(cpu)


def test_bf16_runs_only_where_native_and_measured_faster(monkeypatch):
    """Native bf16 is not enough on a CPU: a timed convolution decides (and only there is one timed)."""
    cpu = torch.device("cpu")
    monkeypatch.delenv(BF16_ENV, raising=False)
    asked = []

    def timed(what, candidates):
        asked.append(sorted(candidates))
        return verdict

    monkeypatch.setattr(precision, "timed_choice", timed)
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    for verdict in ("fp32", "bf16"):
        assert bf16_supported(cpu) is (verdict == "bf16")
        assert BF16OptimWrapper(optimizer=torch.optim.SGD([torch.zeros(1)], lr=1)).bf16 is (verdict == "bf16")
    assert asked == [["bf16", "fp32"]] * 4
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert not bf16_supported(cpu) and len(asked) == 4  # emulated bf16 is never timed
    monkeypatch.setenv(BF16_ENV, "1")
    assert bf16_supported(cpu) and len(asked) == 4  # the override skips the measurement


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_bf16_timing_probe_runs_under_an_inference_callers_mode(monkeypatch, tmp_path, mode):
    """The first to ask may be inference (PiCIE's feature pass): the timed probe still backpropagates."""
    monkeypatch.delenv(BF16_ENV, raising=False)
    monkeypatch.setenv("MSSG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    with torch.no_grad() if mode == "no_grad" else torch.inference_mode():
        choice = bf16_faster(torch.device("cpu"))
    cached = json.loads((tmp_path / "choices.json").read_text())
    assert [v for k, v in cached.items() if k.startswith("bf16-vs-fp32-conv|")] == ["bf16" if choice else "fp32"]


def _wrapper_choice_on_rank(rank: int, init_file: str, overrides: list[str], out_dir: str) -> None:
    os.environ[BF16_ENV] = overrides[rank]
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        wrapper = BF16OptimWrapper(optimizer=torch.optim.SGD([torch.zeros(1)], lr=1))
        Path(out_dir, f"rank{rank}").write_text(str(wrapper.bf16))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("overrides", [["1", "0"], ["0", "1"]])
def test_bf16_choice_is_rank_zeros_on_every_rank(tmp_path, overrides):
    """Ranks that measured differently would train in different precisions: rank 0 decides for all."""
    torch.multiprocessing.spawn(_wrapper_choice_on_rank, args=(str(tmp_path / "init"), overrides, str(tmp_path)),
                                nprocs=2)
    expected = str(overrides[0] == "1")
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == [expected, expected]


def test_bf16_wrapper_is_registered_builds_on_cpu_and_checkpoints():
    model = torch.nn.Linear(2, 2)
    wrapper = OPTIM_WRAPPERS.build(dict(type="BF16OptimWrapper", optimizer=torch.optim.SGD(model.parameters(), lr=1)))
    assert isinstance(wrapper, BF16OptimWrapper)
    state = wrapper.state_dict()
    wrapper.load_state_dict(copy.deepcopy(state))  # resume works with the disabled scaler
    loss = model(torch.ones(1, 2)).sum()
    before = model.weight.detach().clone()
    wrapper.update_params(loss)
    assert torch.allclose(model.weight, before - 1)  # an unscaled SGD step


def test_configs_precision_and_train_amp_flag():
    train = load_tool("train")

    assert Config.fromfile(str(FAITHFUL)).optim_wrapper.type == "OptimWrapper"  # fp32 stays the faithful default
    cpu = Config.fromfile(str(CPU))
    assert cpu.optim_wrapper.type == "BF16OptimWrapper" and cpu.model.test_cfg.precision == "bf16"
    assert tta_ratios(config_tta_pipeline(cpu)) == [1.25, 2.0]  # the lighter CPU protocol, as a ratio override
    assert tta_ratios(config_tta_pipeline(cpu, [3.0])) == [3.0]  # --tta-ratios wins
    half = Config.fromfile(str(ROOT / "configs" / "pspnet_mssg" / "pspnet_wres38w025-d8_histo-half_cpu.py"))
    assert tta_ratios(config_tta_pipeline(half)) == [0.5, 0.75]  # scale factors of the original image
    args = train.parse_args([str(FAITHFUL), "--amp"])
    cfg = train.build_cfg(args)
    if not torch.cuda.is_available() or torch.cuda.is_bf16_supported():
        assert cfg.optim_wrapper.type == "BF16OptimWrapper" and "loss_scale" not in cfg.optim_wrapper
    else:  # a GPU without bf16: fp16 with dynamic loss scaling
        assert cfg.optim_wrapper.type == "AmpOptimWrapper" and cfg.optim_wrapper.loss_scale == "dynamic"


def test_bf16_inference_returns_fp32_logits_close_to_fp32():
    cfg = Config.fromfile(str(TINY))
    torch.manual_seed(0)
    fp32_model = MODELS.build(cfg.model).eval()
    cfg.model.test_cfg.precision = "bf16"
    bf16_model = MODELS.build(cfg.model).eval()
    bf16_model.load_state_dict(fp32_model.state_dict())
    x = torch.rand(1, 3, 72, 90)
    metas = [dict(img_shape=(72, 90), ori_shape=(72, 90), pad_shape=(72, 90))]
    with torch.no_grad():
        a, b = fp32_model.inference(x, metas), bf16_model.inference(x, metas)
    assert a.dtype == b.dtype == torch.float32
    if bf16_model.test_cfg.precision == "bf16" and not torch.equal(a, b):
        assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.95
    cfg.model.test_cfg.precision = "fp16"
    with pytest.raises(ValueError, match="precision"):
        MODELS.build(cfg.model)


def test_faithful_tta_pipeline_is_the_oeem_protocol():
    cfg = Config.fromfile(str(FAITHFUL))
    assert tta_ratios(cfg.tta_pipeline) == [0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0] == list(OEEM_RATIOS)
    flips = cfg.tta_pipeline[1]["transforms"][1]
    assert [f["prob"] for f in flips] == [0.0, 1.0] and all(f["direction"] == "horizontal" for f in flips)
    assert tta_cost(tta_ratios(cfg.tta_pipeline)) == pytest.approx(55.375)  # 16 passes cost ~55 1x passes
    for name in ("save_best", "rule"):
        assert name not in cfg.default_hooks.checkpoint  # nothing is chosen on test labels
    assert cfg.randomness.seed == 0


def test_tta_helpers():
    pipeline = Config.fromfile(str(FAITHFUL)).tta_pipeline
    two = with_tta_ratios(pipeline, [1, 2])
    assert tta_ratios(two) == [1.0, 2.0] and tta_ratios(pipeline)[0] == 0.75  # a copy
    bare = without_loading(two)
    assert [s["type"] for s in bare] == ["TestTimeAug"]
    assert [[t["type"] for t in stage] for stage in bare[0]["transforms"]] == [
        ["Resize", "Resize"], ["RandomFlip", "RandomFlip"], ["PackSegInputs"]]
    with pytest.raises(ValueError):
        with_tta_ratios(pipeline, [])
    assert positive_ratio("1.5") == 1.5
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_ratio(bad)


def test_batched_slide_inference_equals_mmseg_window_by_window():
    from mmseg.models.segmentors.encoder_decoder import EncoderDecoder

    cfg = Config.fromfile(str(TINY))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    x = torch.rand(2, 3, 150, 190)  # 3 x 3 windows of 80 at stride 64, the last ones flush with the border
    metas = [dict(img_shape=(150, 190), ori_shape=(150, 190), pad_shape=(150, 190))] * 2
    with torch.no_grad():
        reference = EncoderDecoder.slide_inference(model, x, [dict(m) for m in metas])
        for window_batch in (1, 4, 100):
            model.test_cfg.window_batch = window_batch
            torch.testing.assert_close(model.slide_inference(x, metas), reference, rtol=1e-4, atol=1e-5)
        small = torch.rand(1, 3, 50, 70)  # smaller than one window: a single, smaller window
        ref_small = EncoderDecoder.slide_inference(model, small, [dict(metas[0], img_shape=(50, 70))])
        torch.testing.assert_close(model.slide_inference(small, [dict(metas[0], img_shape=(50, 70))]), ref_small)


@pytest.mark.parametrize("bf16", [False, True])
def test_cpu_config_channels_last_trains_in_fp32_and_bf16(bf16):
    """The CPU config's model (1/4 width, channels-last) through a training step in both precisions."""
    cfg = Config.fromfile(str(CPU))
    cfg.model.data_preprocessor.size = (64, 64)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    assert model.channels_last and model.backbone.conv1a.weight.is_contiguous(memory_format=torch.channels_last)
    images, proposals = _batch()
    wrapper = BF16OptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.005))
    wrapper.bf16 = bf16
    with wrapper.optim_context(model):
        data = model.data_preprocessor(dict(inputs=images, data_samples=_samples(proposals)), True)
        losses = model.loss(data["inputs"], data["data_samples"])
    wrapper.update_params(sum(v for k, v in losses.items() if "loss" in k))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bench_names_the_cpu_bf16_instructions():
    """bench/msg_step.py reads the bf16 instruction set from /proc/cpuinfo text: AMX > AVX512-BF16 > none
    (then the widest vector set)."""
    spec = importlib.util.spec_from_file_location("_msg_step_bench", ROOT / "bench" / "msg_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    head = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu sse avx512f "
    assert bench.cpu_description(head + "avx512_bf16 amx_tile amx_bf16\n") == "Some CPU @ 2.0GHz (AMX-BF16 tiles)"
    assert bench.cpu_description(head + "avx512_bf16\n") == "Some CPU @ 2.0GHz (AVX512-BF16, no AMX)"
    assert bench.cpu_description(head + "avx2\n") == "Some CPU @ 2.0GHz (AVX-512, no native bf16)"
    zen3 = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu sse avx2 fma\n"
    assert bench.cpu_description(zen3) == "Some CPU @ 2.0GHz (AVX2, no native bf16)"
    assert bench.cpu_description(zen3.replace("avx2 ", "")) == "Some CPU @ 2.0GHz (no native bf16)"
    xeon = "processor\t: 0\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n"
    assert (bench.cpu_description(xeon + "flags\t\t: avx512f avx512_bf16 avx512_fp16\n")
            == "Intel(R) Xeon(R) Processor, family 6 model 207 (AVX512-BF16, no AMX)")
