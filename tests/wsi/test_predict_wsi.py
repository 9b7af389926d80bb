"""tools/predict_wsi.py with the shipped model: stitched slide vs whole-image inference, errors, many slides."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from common.io import read_mask, write_png
from common.synthetic import make_synthetic_slide
from tests.tooling import ROOT, load_tool
from wsi.writers import write_pyramid_tiff

predict = load_tool("predict")
predict_wsi = load_tool("predict_wsi")
make_synthetic_slide_tool = load_tool("make_synthetic_slide")

MODEL = ROOT / "weights" / "mssg_glas.pth"


@pytest.fixture(scope="module")
def model() -> Path:
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} not found (the shipped model)")
    return MODEL


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory) -> tuple[Path, np.ndarray]:
    rgb, _ = make_synthetic_slide(np.random.default_rng(5), 700, 900)
    folder = tmp_path_factory.mktemp("slides")
    path = folder / "small.tif"
    write_pyramid_tiff(path, rgb, 0.62, tile=128)
    return path, rgb


def test_stitched_slide_agrees_with_whole_image_inference(model, small_slide, tmp_path):
    """A slide that fits one tile (the default 1024 px) is the very input of whole-image inference; on a
    3 x 2 grid of 512 px tiles the model's own dependence on where its windows fall shows (measured 0.968
    on this slide: the whole-image path itself runs 640 px windows whose PSP pooling sees what they cover)."""
    path, rgb = small_slide
    write_png(tmp_path / "image" / "small.png", np.ascontiguousarray(rgb[..., ::-1]))
    assert predict.main([str(model), str(tmp_path / "image"), "--out", str(tmp_path / "whole"),
                         "--device", "cpu"]) == 0
    whole = read_mask(tmp_path / "whole" / "masks" / "small.png") > 0
    assert whole.mean() > 0.05  # the model finds glands on the synthetic tissue
    agreement = {}
    for tile in ("1024", "512"):
        out = tmp_path / f"wsi{tile}"
        assert predict_wsi.main([str(model), str(path), "--out", str(out), "--tile", tile, "--overlap", "128",
                                 "--batch", "2", "--device", "cpu"]) == 0
        agreement[tile] = ((tifffile.imread(out / "small_mask.tif") > 0) == whole).mean()
    assert agreement["1024"] >= 0.99 and agreement["512"] >= 0.95
    features = json.loads((tmp_path / "wsi512" / "small.geojson").read_text())["features"]
    with (tmp_path / "wsi512" / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["status"] == "ok" and int(rows[0]["glands"]) == len(features) > 0
    assert int(rows[0]["tiles"]) == 6  # 3 x 2 tiles of 512 px with at least 128 px overlap


def test_slide_without_resolution_is_a_one_line_error(model, tmp_path, capsys):
    rgb, _ = make_synthetic_slide(np.random.default_rng(6), 200, 260)
    write_pyramid_tiff(tmp_path / "nores.tif", rgb, None)
    (tmp_path / "notes.txt").write_text("not a slide")
    code = predict_wsi.main([str(model), str(tmp_path / "nores.tif"), str(tmp_path / "notes.txt"),
                             "--out", str(tmp_path / "out"), "--device", "cpu"])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(errors) == 2
    assert "nores.tif" in errors[0] and "pass --mpp" in errors[0]
    assert "notes.txt" in errors[1] and "not a slide file type" in errors[1]
    assert not (tmp_path / "out" / "nores.geojson").exists()


def test_bad_arguments_exit_2(model, tmp_path, capsys):
    assert predict_wsi.main([str(model), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no slides found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        predict_wsi.main([str(model), str(tmp_path), "--out", str(tmp_path / "o"), "--tile", "256",
                          "--overlap", "200"])
    assert exc.value.code == 2


def test_readme_slide_example_runs_as_written(model, tmp_path):
    """The README's whole-slide example, with its paths moved into a temp folder."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- wsi-example -->")[1].split("```bash")[1].split("```")[0]
    commands = [ln.strip() for ln in block.strip().splitlines() if ln.strip() and not ln.startswith("#")]
    assert [c.split()[1] for c in commands] == ["tools/make_synthetic_slide.py", "tools/predict_wsi.py"]
    slide_args = commands[0].split()[2:]
    wsi_args = commands[1].split()[2:]
    slide = tmp_path / Path(slide_args[0]).name
    assert make_synthetic_slide_tool.main([str(slide), *slide_args[1:], "--height", "600", "--width", "800"]) == 0
    out = tmp_path / "out"
    wsi_args = [str(slide) if a == slide_args[0] else str(out) if a.startswith("work_dirs/") else a
                for a in wsi_args]
    assert predict_wsi.main([*wsi_args, "--device", "cpu"]) == 0
    assert (out / f"{slide.stem}.geojson").is_file() and (out / f"{slide.stem}_mask.tif").is_file()
