"""Robust reading (conversions reported, bad files named) and atomic writing."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.io import InputError, find_ground_truth, read_bgr, write_csv, write_png


def test_reads_bgr_like_cv2(tmp_path, rng):
    img = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.bmp"), img)
    out, warnings = read_bgr(tmp_path / "a.bmp")
    np.testing.assert_array_equal(out, cv2.imread(str(tmp_path / "a.bmp")))
    assert warnings == []


@pytest.mark.parametrize(
    ("mode", "array", "expect_warning"),
    [
        ("L", np.full((8, 9), 77, np.uint8), "grayscale"),
        ("RGBA", np.dstack([np.full((8, 9), c, np.uint8) for c in (10, 20, 30, 128)]), "alpha"),
        ("I;16", np.full((8, 9), 257 * 40, np.uint16), "16-bit"),
    ],
)
def test_conversions_are_reported(tmp_path, mode, array, expect_warning):
    path = tmp_path / "img.png"
    Image.fromarray(array, mode=mode if mode != "I;16" else None).save(path)
    out, warnings = read_bgr(path)
    assert out.shape == (8, 9, 3) and out.dtype == np.uint8
    assert any(expect_warning in w for w in warnings)
    if mode == "RGBA":
        assert out[0, 0].tolist() == [30, 20, 10]  # BGR order, alpha dropped
    if mode == "I;16":
        assert out[0, 0].tolist() == [40, 40, 40]


def test_palette_image_is_expanded(tmp_path):
    pal = Image.new("P", (6, 5))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((1, 1), 1)
    pal.save(tmp_path / "p.png")
    out, warnings = read_bgr(tmp_path / "p.png")
    assert out[0, 0].tolist() == [0, 0, 255] and out[1, 1].tolist() == [255, 0, 0]
    assert warnings == ["palette image converted to BGR"]  # the README promises the warning


def test_corrupt_file_error_names_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(InputError) as err:
        read_bgr(bad)
    assert str(bad) in str(err.value) and "cannot decode" in str(err.value)
    assert "\n" not in str(err.value)


def test_non_image_and_tiny_image(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not an image file type"):
        read_bgr(tmp_path / "notes.txt")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((2, 5, 3), np.uint8))
    with pytest.raises(InputError, match="smaller than 3x3"):
        read_bgr(tmp_path / "tiny.png")


def test_atomic_png_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out" / "map.png"
    write_png(target, np.full((4, 4), 2, np.uint8))
    assert cv2.imread(str(target), cv2.IMREAD_UNCHANGED).max() == 2
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_png(target, np.zeros((4, 4), np.uint8))
    assert sorted(p.name for p in target.parent.iterdir()) == ["map.png"]  # no temp left
    assert cv2.imread(str(target), cv2.IMREAD_UNCHANGED).max() == 2  # old content intact


def test_csv_roundtrip(tmp_path):
    write_csv(tmp_path / "s.csv", [{"a": 1, "b": "x", "extra": 5}], ["a", "b"])
    assert (tmp_path / "s.csv").read_text().splitlines() == ["a,b", "1,x"]


def test_find_ground_truth_layouts(tmp_path):
    (tmp_path / "train_1_anno.bmp").write_bytes(b"")
    (tmp_path / "testA_2.png").write_bytes(b"")
    assert find_ground_truth(tmp_path, "train_1").name == "train_1_anno.bmp"
    assert find_ground_truth(tmp_path, "testA_2").name == "testA_2.png"
    with pytest.raises(InputError, match="no ground-truth mask"):
        find_ground_truth(tmp_path, "nope")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_unwritable_output_is_reported(tmp_path):
    from common.io import check_writable

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not writable"):
        check_writable(Path(blocker) / "sub")


def test_merge_summary_keeps_unredone_rows_and_lets_later_rows_win(tmp_path):
    from common.io import merge_summary, read_csv, write_csv

    summary, part = tmp_path / "summary.csv", tmp_path / ".part.csv"
    write_csv(summary, [{"image": "a", "status": "failed"}, {"image": "b", "status": "ok"}], ("image", "status"))
    write_csv(part, [{"image": "c", "status": "ok"}, {"image": "a", "status": "ok"}], ("image", "status"))
    merge_summary(summary, [{"image": "b", "status": "failed"}], ("image", "status"), [part])
    assert read_csv(summary) == [{"image": "a", "status": "ok"}, {"image": "b", "status": "failed"},
                                 {"image": "c", "status": "ok"}]


def test_prepare_batch_checks_before_any_work(tmp_path):
    from common.io import InputError, error_line, prepare_batch

    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    with pytest.raises(InputError, match="no files found"):
        prepare_batch(images, [out])
    (images / "a.png").write_bytes(b"x")
    (images / "a.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="same name"):
        prepare_batch(images, [out])
    (images / "a.jpg").unlink()
    assert prepare_batch(images, [out / "x", out / "y"]) == [images / "a.png"]
    assert (out / "x").is_dir() and (out / "y").is_dir()
    assert error_line(images / "a.png", ValueError("bad\nmore")) == f"{images / 'a.png'}: ValueError: bad"
    assert error_line("ignored", InputError(images / "a.png", "broken")).startswith(str(images / "a.png"))


def test_timed_choice_measures_once_and_caches(tmp_path, monkeypatch):
    import time

    from common.hardware import timed_choice

    monkeypatch.setenv("MSSG_CACHE_DIR", str(tmp_path))
    calls = {"slow": 0, "fast": 0}

    def run(name: str, seconds: float):
        def go() -> None:
            calls[name] += 1
            time.sleep(seconds)
        return go

    assert timed_choice("probe", {"slow": run("slow", 0.02), "fast": run("fast", 0.0)}, repeats=2) == "fast"
    assert calls == {"slow": 3, "fast": 3}  # one warm-up and two timed runs each
    assert timed_choice("probe", {"slow": run("slow", 0.02), "fast": run("fast", 0.0)}) == "fast"
    assert calls == {"slow": 3, "fast": 3}  # cached: nothing ran again
    assert "probe|" in (tmp_path / "choices.json").read_text()
    (tmp_path / "choices.json").unlink()
    assert timed_choice("probe", {"slow": run("slow", 0.02), "fast": run("fast", 0.0)}) == "fast"
    assert calls == {"slow": 3, "fast": 3}  # known in this process: neither measured nor read again


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_timed_choice_runs_candidates_with_autograd_under_an_inference_caller(tmp_path, monkeypatch, mode):
    import torch

    from common.hardware import timed_choice

    monkeypatch.setenv("MSSG_CACHE_DIR", str(tmp_path))
    modes = []

    def step() -> None:
        modes.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        x = torch.ones(3, requires_grad=True)
        (x * 2).sum().backward()

    with torch.no_grad() if mode == "no_grad" else torch.inference_mode():
        assert timed_choice("autograd-probe", {"a": step, "b": step}, repeats=1) in ("a", "b")
        assert not torch.is_grad_enabled()  # the caller's mode is back
    assert modes == [(True, False)] * 4


def test_spm_fast_path_without_native_bf16_is_eager_fp32(monkeypatch):
    import torch

    from SPM.train import CSNetTrainer, SPMTrainConfig

    monkeypatch.setenv("MSSG_BF16", "0")
    trainer = CSNetTrainer(SPMTrainConfig(n_channels=16), torch.device("cpu"))
    assert (trainer.use_bf16, trainer.compile) == (False, False)
    monkeypatch.setenv("MSSG_BF16", "1")
    trainer = CSNetTrainer(SPMTrainConfig(n_channels=16), torch.device("cpu"))
    assert (trainer.use_bf16, trainer.channels_last, trainer.compile) == (True, True, True)


KEEP_FREED_PROBE = """
import resource, torch, sys
from common.hardware import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.BatchNorm2d(64),
                          torch.nn.Conv2d(64, 64, 1), torch.nn.BatchNorm2d(64))
x = torch.rand(1, 3, 384, 384)  # 64-channel activations of 38 MB, above glibc's largest mmap threshold
def step(): net(x).square().mean().backward()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_keep_freed_memory_stops_refaulting_large_blocks():
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's allocator only")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    env.pop("LD_PRELOAD", None)
    results = {}
    for mode in ("glibc", "keep"):
        out = subprocess.run([sys.executable, "-c", KEEP_FREED_PROBE, mode], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        results[mode] = (out[0] == "True", int(out[1]))
    assert results["keep"][0] is True
    # glibc maps every 38 MB activation afresh (~9k page faults each); kept memory is reused
    assert results["glibc"][1] > 200_000
    assert results["keep"][1] < results["glibc"][1] / 5
    env["MSSG_KEEP_FREED_MEMORY"] = "0"
    out = subprocess.run([sys.executable, "-c", KEEP_FREED_PROBE, "keep"], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == "False"


def test_image_tensor_is_contiguous_nchw():
    import numpy as np

    from SPM.pipeline import image_to_tensor

    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    x = image_to_tensor(image)
    # an HWC-strided tensor would make every activation channels-last (measured 2x slower in fp32)
    assert x.is_contiguous() and x.shape == (1, 3, 4, 5)
    assert float(x[0, 2, 3, 4]) == pytest.approx(image[3, 4, 2] / 255.0)
