"""How a model treats each kind of proposal pixel (evaluation.follow, tools/follow_proposals.py)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from common.io import write_png
from evaluation.follow import FollowCounts, group_follow
from tests.tooling import load_tool

follow_proposals = load_tool("follow_proposals")


def _case():
    """A 4 x 6 image: proposal border on columns 0-1, interior on 2, background on 3-5; truth gland on
    columns 0-3 except row 0 of column 0; the model calls columns 0-1 gland and row 3 of column 5."""
    proposal = np.zeros((4, 6), np.uint8)
    proposal[:, :2] = 1
    proposal[:, 2] = 2
    gt = np.zeros((4, 6), bool)
    gt[:, :4] = True
    gt[0, 0] = False
    pred = np.zeros((4, 6), bool)
    pred[:, :2] = True
    pred[3, 5] = True
    return pred, proposal, gt


def test_counts_and_rows_by_hand():
    counts = FollowCounts()
    counts.update(*_case())
    # rows: proposal background, border, interior; columns: truly background, gland
    np.testing.assert_array_equal(counts.pixels, [[8, 4], [1, 7], [0, 4]])
    np.testing.assert_array_equal(counts.gland, [[1, 0], [1, 7], [0, 0]])
    rows = {(r["proposal"], r["truth"]): (r["pixel_share"], r["called_gland"]) for r in counts.rows()}
    assert rows == {("background", "gland"): ("0.1667", "0.0000"), ("background", "background"): ("0.3333", "0.1250"),
                    ("border", "gland"): ("0.2917", "1.0000"), ("border", "background"): ("0.0417", "1.0000"),
                    ("interior", "gland"): ("0.1667", "0.0000"), ("interior", "background"): ("0.0000", "")}
    with pytest.raises(ValueError, match="differ in size"):
        counts.update(np.zeros((2, 2), bool), np.zeros((2, 3), np.uint8), np.zeros((2, 2), bool))


def test_groups_pool_their_images():
    one, two = FollowCounts(), FollowCounts()
    one.update(*_case())
    pred, proposal, gt = _case()
    two.update(~pred, proposal, gt)
    out = group_follow([{"image": "a", "follow": one}, {"image": "b", "follow": two}, {"image": "c", "follow": one}],
                       {"a": "benign", "b": "malignant"})
    assert list(out) == ["(not in the table)", "benign", "malignant"]
    images, pooled = out["benign"]
    assert images == 1 and np.array_equal(pooled.gland, one.gland)
    np.testing.assert_array_equal(out["malignant"][1].gland + one.gland, one.pixels)


def test_tool_prints_the_tables_and_reports_a_missing_proposal_on_one_line(tmp_path, capsys):
    pred, proposal, gt = _case()
    for stem in ("x", "y"):
        write_png(tmp_path / "pred" / f"{stem}.png", pred.astype(np.uint8) * 255)
        write_png(tmp_path / "gt" / f"{stem}.png", gt.astype(np.uint8) * 255)
    write_png(tmp_path / "prop" / "x.png", proposal)
    (tmp_path / "grade.csv").write_text("name,grade (GlaS)\nx,benign\ny,malignant\n")
    argv = [str(tmp_path / "pred"), str(tmp_path / "prop"), str(tmp_path / "gt"),
            "--groups", str(tmp_path / "grade.csv"), "--csv", str(tmp_path / "out.csv")]
    assert follow_proposals.main(argv) == 1  # y has no proposal: scored without it, exit 1
    out, err = capsys.readouterr()
    assert err.strip() == f"error: {tmp_path / 'prop' / 'y.png'}: no proposal map for this prediction"
    assert "all (1 images):" in out and "benign (1 images):" in out and "malignant" not in out
    assert "  border      gland         0.2917        1.0000" in out
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert len(rows) == 12 and {r["group"] for r in rows} == {"all", "benign"}

    write_png(tmp_path / "prop" / "y.png", proposal * 127)  # the original 0/127/254 encoding
    assert follow_proposals.main(argv) == 0
    assert "all (2 images):" in capsys.readouterr().out
    write_png(tmp_path / "prop" / "y.png", gt.astype(np.uint8) * 255)  # a mask passed as proposals
    assert follow_proposals.main(argv) == 1
    assert "values 0, 255 are not a proposal map" in capsys.readouterr().err
