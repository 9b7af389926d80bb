"""tools/spm_select.py: SPM's selection again on a run's cluster maps gives what mine_proposal gives."""
from __future__ import annotations

import json

import cv2
import numpy as np

from common.io import read_csv, read_mask, write_png
from SPM.select import mine_proposal
from SPM.visualize import _PALETTE, clusters_from_colours, colorize_clusters
from tests.tooling import load_tool


def test_colour_map_round_trip_and_foreign_colours(rng):
    labels = rng.integers(0, len(_PALETTE), (20, 30))
    colours = colorize_clusters(labels)
    assert np.array_equal(clusters_from_colours(colours), labels)
    colours[3, 4] = (1, 2, 3)
    back = clusters_from_colours(colours)
    assert back[3, 4] == -1 and (back >= 0).sum() == labels.size - 1


def _fake_run(root, rng, names=("a", "b")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """An SPM output folder with cluster maps, and the images: dark rings (cluster 0) around pale
    lumens (cluster 1) in a mid-gray stroma (cluster 2) with a little noise (cluster 3)."""
    run = root / "spm" / "cluster_4_nConv_3"
    (run / "cluster_label").mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps({"tool": "SPM", "cluster_num": 4}))
    made = {}
    for i, name in enumerate(names):
        labels = np.full((120, 160), 2)
        yy, xx = np.mgrid[:120, :160]
        for cy, cx in ((40, 50 + 10 * i), (80, 115)):
            r = np.hypot(yy - cy, xx - cx)
            labels[r < 25] = 0
            labels[r < 15] = 1
        labels[rng.random(labels.shape) < 0.02] = 3
        gray = np.choose(labels, [60, 230, 160, 120]).astype(np.uint8)
        image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        write_png(root / "images" / f"{name}.png", image)
        write_png(run / "cluster_label" / f"{name}.png", colorize_clusters(labels))
        made[name] = (gray, labels)
    return made


def test_spm_select_reproduces_mine_proposal_with_new_settings(tmp_path, rng):
    spm_select = load_tool("spm_select")
    made = _fake_run(tmp_path, rng)
    run = tmp_path / "spm" / "cluster_4_nConv_3"
    rc = spm_select.main([str(run), str(tmp_path / "images"), "--output_root", str(tmp_path / "out"),
                          "--min_border_pixels", "500", "--hole_area", "2000"])
    assert rc == 0
    for name, (gray, labels) in made.items():
        expected = mine_proposal(gray, labels, 4, min_border_pixels=500, hole_area=2000)
        got = read_mask(tmp_path / "out" / "gland_proposal" / f"{name}.png")
        assert np.array_equal(got, expected.proposal_map)
        assert set(np.unique(got)) == {0, 1, 2}  # rings are border, the lumens they enclose interior
    rows = read_csv(tmp_path / "out" / "summary.csv")
    assert [(r["image"], r["status"], r["selected_cluster"]) for r in rows] == [("a", "ok", "0"), ("b", "ok", "0")]
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["hole_area"] == 2000 and settings["min_border_pixels"] == 500


def test_spm_select_reports_a_bad_map_and_goes_on(tmp_path, rng, capsys):
    spm_select = load_tool("spm_select")
    _fake_run(tmp_path, rng, names=("a", "b", "c"))
    run = tmp_path / "spm" / "cluster_4_nConv_3"
    (run / "cluster_label" / "a.png").unlink()
    write_png(run / "cluster_label" / "b.png", np.full((120, 160, 3), 7, np.uint8))
    rc = spm_select.main([str(run), str(tmp_path / "images"), "--output_root", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "a.png: no cluster map for this image in the SPM run" in err
    assert "b.png: colours that are not SPM's 4-cluster palette" in err
    assert sorted(p.name for p in (tmp_path / "out" / "gland_proposal").iterdir()) == ["c.png"]


def test_spm_select_refuses_what_is_not_a_run_and_output_inside_it(tmp_path, rng, capsys):
    spm_select = load_tool("spm_select")
    _fake_run(tmp_path, rng)
    run = tmp_path / "spm" / "cluster_4_nConv_3"
    assert spm_select.main([str(tmp_path / "images"), str(tmp_path / "images"), "--output_root",
                            str(tmp_path / "out")]) == 2
    assert "no cluster_label/ folder: not an SPM output folder" in capsys.readouterr().err
    assert spm_select.main([str(run), str(tmp_path / "images"), "--output_root", str(run / "again")]) == 2
    assert "is (inside) the input folder" in capsys.readouterr().err
    assert not (run / "again").exists()
