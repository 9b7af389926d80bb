"""Label-free border-cluster rules (evaluation/border_rules.py) and their CLI (tools/border_rules.py)."""
from __future__ import annotations

import cv2
import numpy as np

from common.io import write_png
from evaluation.border_rules import (
    ImageClusters,
    brightest_choice,
    image_clusters,
    oracle_choice,
    prototype_rule,
    rules_for,
)
from evaluation.pixel import PooledCounts
from SPM.select import mine_proposal
from SPM.visualize import colorize_clusters
from tests.tooling import load_tool

# BGR colours of three tissue classes: dark nuclei, pink stroma, pale lumen
COLOURS = {0: (120, 40, 80), 1: (190, 150, 230), 2: (235, 230, 240)}


def _scene(rings_dark: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 64x64 image of two glands: rings of cluster 0 around lumens of cluster 2, in stroma (cluster 1)."""
    labels = np.ones((64, 64), np.int64)
    gt = np.zeros((64, 64), bool)
    for cy, cx in ((18, 18), (44, 44)):
        yy, xx = np.ogrid[:64, :64]
        r = np.hypot(yy - cy, xx - cx)
        labels[r < 12] = 0
        labels[r < 7] = 2
        gt |= r < 12
    image = np.zeros((64, 64, 3), np.uint8)
    for c, bgr in COLOURS.items():
        image[labels == c] = bgr
    image[labels == 0] = (rings_dark + 40, rings_dark - 40, rings_dark)
    return image, labels, gt


def test_image_clusters_gives_spms_gland_for_the_darkest_and_centred_features():
    image, labels, gt = _scene()
    im = image_clusters("a", image, labels, 3, min_pixels=100, hole_area=500)
    assert im.darkest == 0 and im.candidates == [0, 1, 2]
    spm = mine_proposal(np.asarray(image.mean(-1)), labels, 3, 100, 500)  # any gray with the same order
    assert (im.glands[0] == spm.gland).all()
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(float)
    for c in im.candidates:
        assert np.isclose(im.features[c]["gray"][0], gray[labels == c].mean() - gray.mean())
        assert np.allclose(im.features[c]["HE"], np.concatenate([im.features[c]["H"], im.features[c]["E"]]))
    # the nuclei are the most haematoxylin-rich, the lumen the palest
    assert max(im.candidates, key=lambda c: im.features[c]["H"][0]) == 0
    assert brightest_choice(im) == 2
    assert oracle_choice(im, gt) == 0


def test_small_clusters_are_no_candidates():
    image, labels, _ = _scene()
    im = image_clusters("a", image, labels, 3, min_pixels=(labels == 2).sum())
    assert 2 not in im.candidates and im.darkest == 0


def _fake(name: str, grays: dict[int, float], darkest: int) -> ImageClusters:
    feats = {c: {f: np.array([g]) for f in ("gray", "H", "E")} | {"HE": np.array([g, g]), "RGB": np.full(3, g)}
             for c, g in grays.items()}
    return ImageClusters(name, sorted(grays), darkest, feats, {})


def test_prototype_rule_picks_the_cluster_like_the_sets_borders():
    # borders are about 50 gray levels darker than their images; in "odd" the darkest cluster is far darker
    # (stroma packed with lymphocytes) and another candidate looks like the set's borders
    images = [_fake("a", {0: -50, 1: 20}, 0), _fake("b", {0: -55, 1: 30}, 0), _fake("c", {3: -45, 1: 10}, 3),
              _fake("odd", {0: -120, 2: -52, 1: 40}, 0)]
    for feature in ("gray", "H", "E", "HE", "RGB"):
        choose = prototype_rule(images, feature)
        assert [choose(im) for im in images] == [0, 0, 3, 2]
    assert set(rules_for(images)) == {"darkest", "brightest", "prototype:gray", "prototype:H", "prototype:E",
                                      "prototype:HE", "prototype:RGB"}


def _spm_run(tmp_path, scenes):
    run = tmp_path / "run"
    for name, (image, labels, gt) in scenes.items():
        write_png(tmp_path / "images" / f"{name}.png", image)
        write_png(tmp_path / "masks" / f"{name}.png", gt.astype(np.uint8) * 255)
        write_png(run / "cluster_label" / f"{name}.png", colorize_clusters(labels))
    (run / "settings.json").write_text('{"cluster_num": 3}')
    return run


def test_cli_scores_every_rule_per_group(tmp_path, capsys):
    run = _spm_run(tmp_path, {"a": _scene(), "b": _scene(70)})
    (tmp_path / "grades.csv").write_text("name, grade (GlaS)\na,benign\nb,malignant\n")
    tool = load_tool("border_rules")
    rc = tool.main([str(run), str(tmp_path / "images"), str(tmp_path / "masks"), "--min_border_pixels", "100",
                    "--hole_area", "500", "--groups", str(tmp_path / "grades.csv"), "--csv", str(tmp_path / "t.csv")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "2 images; pooled mIoU per rule (all, benign, malignant)" in out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    # SPM's gland of one scene (the ring and its lumen, widened by SPM's dilation of sparse borders)
    image, labels, gt = _scene()
    one = PooledCounts()
    one.update(image_clusters("a", image, labels, 3, 100, 500).glands[0], gt)
    assert f"all {one.miou():.4f}  benign {one.miou():.4f}  malignant {one.miou():.4f}" in lines["darkest"]
    assert lines["oracle"].split("all")[1] == lines["darkest"].split("all")[1]  # the darkest is the best here
    assert "(another cluster than the darkest in 2)" in lines["brightest"]
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("image,group,darkest cluster,darkest mIoU")


def test_cli_names_a_missing_mask(tmp_path, capsys):
    run = _spm_run(tmp_path, {"a": _scene()})
    (tmp_path / "masks" / "a.png").unlink()
    rc = load_tool("border_rules").main([str(run), str(tmp_path / "images"), str(tmp_path / "masks")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "a.png: no such file" in err[0]
