"""Reliability tables of probability maps (evaluation.calibration, tools/calibration.py) and the maps
``tools/predict.py --probabilities`` writes."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from PIL import Image

from common.io import InputError, probability_to_uint8, read_bgr, read_mask, read_probability, write_png
from evaluation.calibration import ReliabilityCounts, check_edges, group_reliability
from tests.tooling import ROOT, load_tool

calibration = load_tool("calibration")
predict = load_tool("predict")

TINY = ROOT / "tests" / "data" / "tiny_mssg_cpu.py"


def test_counts_ece_and_rows_by_hand():
    counts = ReliabilityCounts(np.array([0.0, 0.5, 1.0]))
    counts.update(np.array([[0.05, 0.05, 0.95], [0.95, 0.5, 1.0]]), np.array([[0, 1, 1], [1, 0, 1]], bool))
    # p = 0.5 opens the upper bin; p = 1 closes it
    np.testing.assert_array_equal(counts.pixels, [2, 4])
    np.testing.assert_array_equal(counts.gland, [1, 3])
    np.testing.assert_allclose(counts.probability_sum, [0.1, 3.4])
    assert counts.ece() == pytest.approx(2 / 6 * abs(0.5 - 0.05) + 4 / 6 * abs(0.75 - 0.85))
    assert counts.rows() == [
        {"bin": "[0, 0.5)", "pixel_share": "0.3333", "mean_probability": "0.0500", "gland_frequency": "0.5000"},
        {"bin": "[0.5, 1]", "pixel_share": "0.6667", "mean_probability": "0.8500", "gland_frequency": "0.7500"},
    ]
    assert np.isnan(ReliabilityCounts().ece())
    assert ReliabilityCounts().rows()[0]["gland_frequency"] == ""  # an empty bin has no frequency


def test_calibrated_map_has_small_ece_and_an_overconfident_one_a_large_ece():
    rng = np.random.default_rng(0)
    p = rng.random((200, 200))
    gt = rng.random(p.shape) < p  # gland with exactly the predicted probability
    calibrated = ReliabilityCounts(np.linspace(0, 1, 11))
    calibrated.update(p, gt)
    sure = ReliabilityCounts(np.linspace(0, 1, 11))
    sure.update(np.where(p > 0.5, 0.99, 0.01), gt)
    assert calibrated.ece() < 0.01
    assert sure.ece() > 0.2
    frequency = calibrated.gland / calibrated.pixels
    np.testing.assert_allclose(frequency, (np.arange(10) + 0.5) / 10, atol=0.02)


def test_pooling_images_equals_counting_them_together():
    rng = np.random.default_rng(1)
    a, b = rng.random((30, 40)), rng.random((20, 40))
    ga, gb = rng.random(a.shape) < 0.4, rng.random(b.shape) < 0.6
    pooled = ReliabilityCounts()
    one, two = ReliabilityCounts(), ReliabilityCounts()
    one.update(a, ga)
    two.update(b, gb)
    pooled.update(np.concatenate([a, b]), np.concatenate([ga, gb]))
    one += two
    np.testing.assert_array_equal(one.pixels, pooled.pixels)
    np.testing.assert_array_equal(one.gland, pooled.gland)
    np.testing.assert_allclose(one.probability_sum, pooled.probability_sum)
    with pytest.raises(ValueError, match="different bins"):
        one += ReliabilityCounts(np.array([0.0, 1.0]))
    groups = group_reliability([{"image": "a", "reliability": two}, {"image": "b", "reliability": two},
                                {"image": "c", "reliability": two}], {"a": "x", "b": "x"})
    assert list(groups) == ["(not in the table)", "x"] and groups["x"][0] == 2
    np.testing.assert_array_equal(groups["x"][1].pixels, 2 * two.pixels)


@pytest.mark.parametrize("edges", [[0.0, 0.5], [0.1, 1.0], [0.0, 0.5, 0.5, 1.0], [1.0, 0.0], [0.0]])
def test_bin_edges_must_increase_from_zero_to_one(edges):
    with pytest.raises(ValueError, match="increase strictly from 0 to 1"):
        check_edges(edges)


def test_probability_maps_round_trip_in_eight_bits_and_other_depths_are_refused(tmp_path):
    p = np.linspace(0, 1, 1001).reshape(7, 143)
    write_png(tmp_path / "p.png", probability_to_uint8(p))
    np.testing.assert_allclose(read_probability(tmp_path / "p.png"), p, atol=0.5 / 255 + 1e-7)
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(InputError, match=r"deep\.png.*expected an 8-bit probability map"):
        read_probability(tmp_path / "deep.png")


def _maps_and_masks(root: Path) -> dict[str, ReliabilityCounts]:
    """Three images: two of group g1, one of g2; returns the counts each group must pool to."""
    rng = np.random.default_rng(2)
    expected = {"g1": ReliabilityCounts(), "g2": ReliabilityCounts()}
    for name, group in (("a", "g1"), ("b", "g1"), ("c", "g2")):
        p = probability_to_uint8(rng.random((24, 32)))
        gt = rng.random(p.shape) < 0.5
        write_png(root / "prob" / f"{name}.png", p)
        write_png(root / "gt" / f"{name}.png", gt.astype(np.uint8) * 255)
        expected[group].update(p / 255.0, gt)
    (root / "grades.csv").write_text("name,grade (GlaS)\na,g1\nb,g1\nc,g2\n")
    return expected


def test_tool_prints_and_writes_the_tables_of_the_set_and_each_group(tmp_path, capsys):
    expected = _maps_and_masks(tmp_path)
    rc = calibration.main([str(tmp_path / "prob"), str(tmp_path / "gt"), "--groups", str(tmp_path / "grades.csv"),
                           "--csv", str(tmp_path / "out.csv")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"g2 (1 images):  ECE: {expected['g2'].ece():.4f}" in printed
    with (tmp_path / "out.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["group"] for r in rows] == ["all"] * 6 + ["g1"] * 6 + ["g2"] * 6
    g1 = [r for r in rows if r["group"] == "g1"]
    assert g1[0]["images"] == "2" and g1[0]["ECE"] == f"{expected['g1'].ece():.4f}"
    assert [{k: r[k] for k in ("bin", "pixel_share", "mean_probability", "gland_frequency")} for r in g1] \
        == expected["g1"].rows()


def test_tool_reports_a_bad_map_on_one_line_and_scores_the_rest(tmp_path, capsys):
    _maps_and_masks(tmp_path)
    write_png(tmp_path / "prob" / "b.png", np.random.default_rng(3).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    assert calibration.main([str(tmp_path / "prob"), str(tmp_path / "gt")]) == 1
    captured = capsys.readouterr()
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "b.png" in errors[0] and "colour image" in errors[0]
    assert "all (2 images)" in captured.out
    with pytest.raises(SystemExit) as exc:
        calibration.main([str(tmp_path / "prob"), str(tmp_path / "gt"), "--edges", "0", "0.7", "0.3", "1"])
    assert exc.value.code == 2


def test_predict_writes_the_probability_behind_each_mask(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(TINY)).model)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "tiny.pth")
    rng = np.random.default_rng(4)
    for name in ("a", "b"):
        write_png(tmp_path / "imgs" / f"{name}.png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    out = tmp_path / "pred"
    assert predict.main([str(TINY), str(tmp_path / "tiny.pth"), str(tmp_path / "imgs"), "--out", str(out),
                         "--device", "cpu", "--probabilities"]) == 0

    from MSG.apis import Segmenter, load_model

    segment = Segmenter(load_model(str(TINY), tmp_path / "tiny.pth", "cpu"))
    for name in ("a", "b"):
        probability = read_mask(out / "probabilities" / f"{name}.png")
        mask = read_mask(out / "masks" / f"{name}.png") > 0
        assert probability.dtype == np.uint8 and probability.shape == mask.shape == (48, 64)
        image, _ = read_bgr(tmp_path / "imgs" / f"{name}.png")
        np.testing.assert_array_equal(probability, probability_to_uint8(segment.probabilities(image)[1]))
        # the mask is the argmax of the same softmax: gland where p > 0.5
        assert (probability[mask] >= 128).all() and (probability[~mask] <= 128).all()
    assert predict.main([str(TINY), str(tmp_path / "tiny.pth"), str(tmp_path / "imgs"), "--out",
                         str(tmp_path / "plain"), "--device", "cpu"]) == 0
    assert (tmp_path / "plain" / "masks" / "a.png").is_file()
    assert not (tmp_path / "plain" / "probabilities").exists()  # only on request
