"""Whole-slide inference on synthetic pyramidal TIFFs: reading, tiling, blending, polygons, outputs, resume."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely
import tifffile
from shapely.geometry import Point, shape

from common.io import InputError, probability_to_uint8
from wsi import SlideSettings, open_slide, segment_slide
from wsi.polygons import mask_polygons, merge_polygons
from wsi.tiling import TileGrid
from wsi.writers import write_pyramid_tiff

STROMA = (228, 165, 196)
GLAND = (80, 40, 120)
MPP = 0.5


def draw_slide(height: int = 900, width: int = 1100) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Pink tissue on white glass with dark elliptical glands; one gland sits across the seam of
    512 px tiles with 64 px overlap (x = 448..512). Returns ``(rgb, gland mask, gland centres)``."""
    rgb = np.full((height, width, 3), 245, np.uint8)
    cv2.rectangle(rgb, (60, 40), (width - 60, height - 50), STROMA, -1)
    gland = np.zeros((height, width), np.uint8)
    centres = [(480, 300), (200, 200), (800, 600), (300, 700), (480, 470)]
    for i, (cx, cy) in enumerate(centres):
        cv2.ellipse(gland, (cx, cy), (70 - 5 * i, 45), 15 * i, 0, 360, 1, -1)
    rgb[gland.astype(bool)] = GLAND
    return rgb, gland.astype(bool), centres


def colour_rule(tiles: list[np.ndarray]) -> list[np.ndarray]:
    """A stand-in segmenter that looks at each pixel alone: gland where the pixel is dark."""
    return [(t.astype(np.float32).mean(axis=2) < 120).astype(np.float32) for t in tiles]


@pytest.fixture
def slide(tmp_path) -> tuple[Path, np.ndarray, list[tuple[int, int]]]:
    rgb, gland, centres = draw_slide()
    path = tmp_path / "slide.tif"
    write_pyramid_tiff(path, rgb, MPP, tile=128)
    return path, gland, centres


def read_outputs(out: Path, stem: str = "slide") -> tuple[list, np.ndarray, dict]:
    features = json.loads((out / f"{stem}.geojson").read_text())["features"]
    mask = tifffile.imread(out / f"{stem}_mask.tif") > 0
    with (out / f"{stem}.csv").open() as fh:
        row = next(csv.DictReader(fh))
    return features, mask, row


def test_tiff_reader_levels_regions_and_resolution(slide):
    path, _, _ = slide
    rgb, _, _ = draw_slide()
    with open_slide(path) as s:
        assert s.level_dimensions[0] == (1100, 900)
        assert len(s.level_dimensions) == 2 and s.level_downsamples[1] == pytest.approx(2.0)
        assert s.mpp == pytest.approx(MPP)
        # a region across four 128 px tiles, and one reaching past the slide's edge (white there)
        np.testing.assert_array_equal(s.read(0, 100, 120, 300, 200), rgb[120:320, 100:400])
        edge = s.read(0, 1000, 850, 200, 100)
        np.testing.assert_array_equal(edge[:50, :100], rgb[850:900, 1000:1100])
        assert (edge[50:] == 255).all() and (edge[:, 100:] == 255).all()


def test_openslide_reader_composites_glass_white(tmp_path):
    rgb, _, _ = draw_slide(300, 400)
    path = tmp_path / "scan.svs"  # a generic tiled TIFF that OpenSlide reads; no resolution
    tifffile.imwrite(path, rgb, tile=(128, 128), photometric="rgb", compression="zlib")
    with open_slide(path) as s:
        assert s.mpp is None
        region = s.read(0, 350, 250, 100, 100)
    np.testing.assert_array_equal(region[:50, :50], rgb[250:300, 350:400])
    assert (region[50:] == 255).all()


def test_unknown_format_and_garbage_are_one_line_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unknown slide format"):
        open_slide(tmp_path / "notes.txt")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="not a readable TIFF"):
        open_slide(tmp_path / "broken.tif")


def test_blend_weights_sum_to_one_and_blocks_partition():
    grid = TileGrid(width=1000, height=700, tile=256, overlap=64)
    covered = np.zeros((700, 1000), int)
    for r in range(grid.rows):
        for c in range(grid.cols):
            x0, y0, x1, y1 = grid.block(r, c)
            covered[y0:y1, x0:x1] += 1
            np.testing.assert_allclose(grid.blend_block(r, c, lambda *_: np.ones((256, 256), np.float32)), 1.0,
                                       rtol=1e-6)
    assert (covered == 1).all()
    with pytest.raises(ValueError, match="half the tile"):
        TileGrid(100, 100, 64, 40)


def test_polygons_are_pixel_exact_and_merge_across_a_seam():
    mask = np.zeros((300, 300), bool)
    cv2.circle(mask.view(np.uint8), (150, 150), 60, 1, -1)
    cv2.circle(mask.view(np.uint8), (150, 150), 20, 0, -1)  # a lumen: a hole
    whole = mask_polygons(mask)
    assert len(whole) == 1 and len(whole[0].interiors) == 1
    assert whole[0].area == pytest.approx(mask.sum(), rel=0.01)
    halves = merge_polygons(mask_polygons(mask[:, :150]) + mask_polygons(mask[:, 150:], 150, 0))
    assert len(halves) == 1 and halves[0].is_valid
    assert halves[0].area == pytest.approx(whole[0].area, rel=1e-3)


def test_slide_end_to_end_geojson_mask_and_seam(slide, tmp_path):
    path, gland, centres = slide
    out = tmp_path / "out"
    row = segment_slide(path, colour_rule, out, SlideSettings(target_mpp=MPP, tile=512, overlap=64), batch=2)
    features, mask, csv_row = read_outputs(out)
    np.testing.assert_array_equal(mask, gland)  # the stand-in is exact pixel by pixel, so is the stitching
    polygons = [shape(f["geometry"]) for f in features]
    assert all(p.is_valid and isinstance(p, shapely.Polygon) for p in polygons)
    assert sum(p.area for p in polygons) == pytest.approx(gland.sum(), rel=0.01)
    assert len(polygons) == len(centres) == int(csv_row["glands"]) == row["glands"]
    # the gland across the seam at x = 448..512 is one polygon containing its centre
    assert sum(p.contains(Point(*centres[0])) for p in polygons) == 1
    props = features[0]["properties"]
    assert props["objectType"] == "annotation" and props["classification"]["name"] == "Gland"
    assert float(csv_row["gland_area_um2"]) == pytest.approx(gland.sum() * MPP**2, rel=0.01)
    with tifffile.TiffFile(out / "slide_mask.tif") as tif:
        page = tif.pages[0]
        assert page.is_tiled and page.get_resolution(tifffile.RESUNIT.CENTIMETER)[0] == pytest.approx(1e4 / MPP)
        assert len(tif.series[0].levels) >= 2
    assert (out / "slide_overlay.png").stat().st_size > 0
    assert not (out / ".slide.tiles").exists()  # the tile cache goes once the slide is done


def test_resampling_to_the_model_resolution_and_level_0_coordinates(slide, tmp_path):
    """Segmenting at twice the slide's µm/px reads level 1 and maps the polygons back to level 0."""
    path, gland, _ = slide
    out = tmp_path / "out"
    row = segment_slide(path, colour_rule, out, SlideSettings(target_mpp=2 * MPP, tile=256, overlap=32))
    features, mask, _ = read_outputs(out)
    assert row["level"] == 1 and mask.shape == (450, 550)
    area = sum(shape(f["geometry"]).area for f in features)
    assert area == pytest.approx(gland.sum(), rel=0.03)


def test_missing_resolution_needs_mpp(tmp_path):
    rgb, gland, _ = draw_slide(400, 500)
    path = tmp_path / "nores.tif"
    write_pyramid_tiff(path, rgb, None, tile=128)
    with pytest.raises(InputError, match="pass --mpp"):
        segment_slide(path, colour_rule, tmp_path / "out", SlideSettings(target_mpp=MPP, tile=256, overlap=32))
    segment_slide(path, colour_rule, tmp_path / "out", SlideSettings(target_mpp=MPP, tile=256, overlap=32, mpp=MPP))
    assert (tifffile.imread(tmp_path / "out" / "nores_mask.tif") > 0).sum() == gland.sum()


def test_interrupted_run_resumes_to_the_same_outputs(slide, tmp_path):
    path, _, _ = slide
    settings = SlideSettings(target_mpp=MPP, tile=256, overlap=32)
    segment_slide(path, colour_rule, tmp_path / "once", settings, batch=2)

    calls = []

    def dies_after_three_batches(tiles):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(len(tiles))
        return colour_rule(tiles)

    with pytest.raises(KeyboardInterrupt):
        segment_slide(path, dies_after_three_batches, tmp_path / "resumed", settings, batch=2)
    cached = sorted((tmp_path / "resumed" / ".slide.tiles").glob("r*_c*.npy"))
    assert len(cached) == 6 and not (tmp_path / "resumed" / "slide.geojson").exists()
    seen = []
    segment_slide(path, lambda tiles: seen.append(len(tiles)) or colour_rule(tiles), tmp_path / "resumed",
                  settings, batch=2)
    once, resumed = read_outputs(tmp_path / "once"), read_outputs(tmp_path / "resumed")
    assert once[0] == resumed[0]
    np.testing.assert_array_equal(once[1], resumed[1])
    total = int(once[2]["tissue_tiles"])
    assert sum(seen) == total - 6  # only the unfinished tiles ran again
    # a resume with other settings is refused, naming what differs
    (tmp_path / "resumed" / ".slide.tiles").mkdir()
    (tmp_path / "resumed" / ".slide.tiles" / "settings.json").write_text(json.dumps({"tile": 512}))
    with pytest.raises(InputError, match="other settings"):
        segment_slide(path, colour_rule, tmp_path / "resumed", settings)


def soft_rule(tiles: list[np.ndarray]) -> list[np.ndarray]:
    """A stand-in whose gland probability ramps with darkness, pixel by pixel (blending keeps it exact)."""
    return [np.clip((200.0 - t.astype(np.float32).mean(axis=2)) / 150.0, 0.0, 1.0) for t in tiles]


def test_probability_map_is_the_blended_probability_behind_the_mask(tmp_path):
    rgb, gland, _ = draw_slide()
    tissue = (rgb != 245).any(axis=2)
    noise = np.random.default_rng(7).integers(-25, 26, rgb.shape) * tissue[..., None]
    rgb = np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)  # many grey levels: a heat map to check
    path = tmp_path / "slide.tif"
    write_pyramid_tiff(path, rgb, MPP, tile=128)
    out = tmp_path / "out"
    segment_slide(path, soft_rule, out, SlideSettings(target_mpp=MPP, tile=512, overlap=64), probabilities=True)
    expected = probability_to_uint8(soft_rule([rgb])[0])
    with tifffile.TiffFile(out / "slide_probability.tif") as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
        page = tif.pages[0]
        assert page.is_tiled and page.get_resolution(tifffile.RESUNIT.CENTIMETER)[0] == pytest.approx(1e4 / MPP)
    probability = levels[0]
    assert probability.dtype == np.uint8 and probability.shape == gland.shape
    # tiles are cached in float16: at most one level off the exact map
    assert np.abs(probability.astype(int) - expected).max() <= 1
    assert len(np.unique(probability)) > 20  # a heat map, not a mask
    mask = tifffile.imread(out / "slide_mask.tif") > 0
    assert (probability[mask] >= 128).all() and (probability[~mask] <= 128).all()
    # the reduced level averages 2 x 2 blocks (a mask's level takes their max)
    quads = probability[:900 // 2 * 2, :1100 // 2 * 2].reshape(450, 2, 550, 2).astype(int)
    np.testing.assert_array_equal(levels[1], (quads.sum(axis=(1, 3)) + 2) // 4)
    segment_slide(path, soft_rule, tmp_path / "plain", SlideSettings(target_mpp=MPP, tile=512, overlap=64))
    assert (tmp_path / "plain" / "slide_mask.tif").is_file()
    assert not (tmp_path / "plain" / "slide_probability.tif").exists()  # only on request
