"""Crop/merge, the evaluate CLI, checkpoint conversion, GlaS preparation and ablation overrides."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from common.io import read_mask, write_png
from common.tiles import crop_tiles, merge_tiles, tile_offsets
from tests.tooling import load_tool

ablation = load_tool("ablation")
convert_checkpoint = load_tool("convert_checkpoint")
crop = load_tool("crop_img_and_gt")
evaluate = load_tool("evaluate")

ROOT = Path(__file__).resolve().parents[2]


def test_tile_offsets_cover_glas_sizes():
    assert tile_offsets(775, 256, 192) == [0, 192, 384, 519]
    assert tile_offsets(522, 256, 192) == [0, 192, 266]
    assert tile_offsets(448, 256, 192) == [0, 192]
    assert tile_offsets(100, 256, 192) == [0]


@pytest.mark.parametrize("shape", [(300, 410, 3), (522, 775), (100, 120, 3)])
def test_crop_merge_round_trip(rng, shape):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    tiles = crop_tiles(image, 256, 192, pad_value=0)
    assert all(t.shape[:2] == (256, 256) for t in tiles.values())
    np.testing.assert_array_equal(merge_tiles(tiles, *shape[:2]), image)


def test_small_image_proposal_padded_with_ignore():
    tiles = crop_tiles(np.ones((100, 120), np.uint8), 256, 192, pad_value=crop.PROPOSAL_PAD)
    (tile,) = tiles.values()
    assert (tile[:100, :120] == 1).all() and (tile[100:] == 255).all() and (tile[:, 120:] == 255).all()


def test_crop_cli_names_and_missing_proposal(tmp_path, rng, capsys):
    write_png(tmp_path / "img" / "a.png", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    write_png(tmp_path / "img" / "b.png", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    write_png(tmp_path / "prop" / "a.png", np.full((300, 400), 2, np.uint8))
    rc = crop.main([str(tmp_path / "img"), str(tmp_path / "prop"), str(tmp_path / "out")])
    assert rc == 1 and "b.png: no proposal map" in capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert names == ["a_0_0.png", "a_0_144.png", "a_44_0.png", "a_44_144.png"]
    assert sorted(p.name for p in (tmp_path / "out" / "proposals").iterdir()) == names
    assert (read_mask(tmp_path / "out" / "proposals" / "a_44_144.png") == 2).all()


def test_crop_only_crops_the_listed_images_and_names_a_listed_stem_without_image(tmp_path, rng, capsys):
    for stem in ("a", "b", "c"):
        write_png(tmp_path / "img" / f"{stem}.png", rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
        write_png(tmp_path / "prop" / f"{stem}.png", np.full((200, 200), 2, np.uint8))
    (tmp_path / "kept.txt").write_text("a\n\nc\n")
    args = [str(tmp_path / "img"), str(tmp_path / "prop"), str(tmp_path / "out"), "--crop_size", "256"]
    assert crop.main([*args, "--only", str(tmp_path / "kept.txt")]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["a_0_0.png", "c_0_0.png"]
    (tmp_path / "bad.txt").write_text("a\nzz\n")
    rc = crop.main([*args[:2], str(tmp_path / "out2"), "--only", str(tmp_path / "bad.txt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"error: {tmp_path / 'bad.txt'}: lists 1 image(s) not in the image folder: zz"]
    assert not (tmp_path / "out2" / "images").exists() or not any((tmp_path / "out2" / "images").iterdir())


def test_evaluate_cli(tmp_path, capsys):
    from tests.evaluation.test_evaluation import hand_case

    gt, pred = hand_case()
    write_png(tmp_path / "gt" / "x_anno.png", gt)  # the official *_anno naming
    write_png(tmp_path / "pred" / "x.png", pred * 255)
    assert evaluate.main([str(tmp_path / "pred"), str(tmp_path / "gt"), "--csv", str(tmp_path / "e.csv")]) == 0
    out = capsys.readouterr().out
    iou_fg, iou_bg = 32 / 84, 316 / 368
    assert f"mIoU: {(iou_fg + iou_bg) / 2:.4f}" in out and f"Dice: {64 / 116:.4f}" in out
    assert "obj_F1: 0.4000" in out


# ---- checkpoint conversion ---------------------------------------------------------------------
def test_convert_mmseg0x_checkpoint(tmp_path, capsys):
    from mmseg.registry import MODELS

    cfg_path = str(Path(__file__).parents[1] / "data" / "tiny_mssg_cpu.py")
    model = MODELS.build(Config.fromfile(cfg_path).model)
    state = {f"module.{k}": v for k, v in model.state_dict().items() if "embed_head" not in k}
    assert any(k.startswith("module.backbone.b4_5.bn_branch2a") for k in state)
    old = {"state_dict": state, "meta": {"CLASSES": ["background", "gland"], "PALETTE": [[0, 0, 0], [1, 1, 1]],
                                         "mmseg_version": "0.20.2"}, "optimizer": {"state": {}}}
    torch.save(old, tmp_path / "old.pth")
    rc = convert_checkpoint.main([str(tmp_path / "old.pth"), str(tmp_path / "new.pth"), "--config", cfg_path])
    assert rc == 0
    out = capsys.readouterr().out
    new = torch.load(tmp_path / "new.pth", weights_only=True)
    assert "optimizer" not in new and new["meta"]["dataset_meta"]["classes"] == ("background", "gland")
    assert all(not k.startswith("module.") for k in new["state_dict"])
    missing_line = next(ln for ln in out.splitlines() if ln.startswith("missing keys"))
    assert "decode_head.embed_head" in missing_line and "backbone." not in missing_line
    assert "unexpected keys (0)" in out


def test_convert_bare_backbone_and_bad_file(tmp_path, capsys):
    torch.save({"conv1a.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "res38d.pth")
    assert convert_checkpoint.main([str(tmp_path / "res38d.pth"), str(tmp_path / "out.pth")]) == 0
    assert list(torch.load(tmp_path / "out.pth", weights_only=True)["state_dict"]) == ["backbone.conv1a.weight"]
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert convert_checkpoint.main([str(tmp_path / "junk.pth"), str(tmp_path / "o2.pth")]) == 2
    assert "junk.pth" in capsys.readouterr().err


def test_prepare_glas_from_official_flat_layout(tmp_path, rng, capsys):
    import cv2
    prepare_glas = load_tool("prepare_glas")

    src = tmp_path / "Warwick_QU_Dataset"
    src.mkdir()
    for name in ("train_1", "testA_1"):
        cv2.imwrite(str(src / f"{name}.bmp"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        anno = np.zeros((30, 40), np.uint8)
        anno[2:10, 2:10] = 1
        anno[12:20, 12:20] = 2  # instance ids
        cv2.imwrite(str(src / f"{name}_anno.bmp"), anno)
    cv2.imwrite(str(src / "train_2.bmp"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))  # no annotation
    cv2.imwrite(str(src / "testA_2.bmp"), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "testA_2_anno.bmp"), np.zeros((31, 40), np.uint8))  # wrong size
    (src / "Grade.csv").write_text("name,grade\n")
    rc = prepare_glas.main([str(src), str(tmp_path / "glas")])
    err = capsys.readouterr().err
    assert rc == 1 and "train_2_anno.bmp: no annotation for train_2.bmp" in err and "testA_2_anno.bmp: size" in err
    mask = read_mask(tmp_path / "glas" / "train" / "masks" / "train_1.png")
    assert set(np.unique(mask)) == {0, 1, 2} and (mask == 1).sum() == 64 and (mask == 2).sum() == 64  # ids kept
    img = cv2.imread(str(tmp_path / "glas" / "testA" / "images" / "testA_1.png"))
    np.testing.assert_array_equal(img, cv2.imread(str(src / "testA_1.bmp")))
    assert (tmp_path / "glas" / "Grade.csv").is_file() and (tmp_path / "glas" / "manifest.csv").is_file()


def test_ablation_schedule_overrides_scale_omission_start():
    base = ROOT / "configs" / "pspnet_mssg" / "pspnet_wres38w025-d8_2k_histo_cpu.py"
    assert ablation.variant_config(base, "ce").name == "pspnet_wres38w025-d8_2k_histo_cpu_ce.py"
    assert ablation.variant_config(base, "msg") == base
    n, options = ablation.schedule_overrides(base, 500, None)
    assert n == 500
    assert "param_scheduler.0.end=500" in options and "train_cfg.max_iters=500" in options
    assert "model.decode_head.omission.start_iter=50" in options  # 200 of 2000 -> 50 of 500
    assert ablation.schedule_overrides(base, 500, 123)[1][-1] == "model.decode_head.omission.start_iter=123"
    n, options = ablation.schedule_overrides(ablation.variant_config(base, "variation"), None, None)
    assert n == 2000 and not any("omission" in o for o in options)  # no Omission in this variant
    with pytest.raises(ValueError, match="unknown variant"):
        ablation.variant_config(base, "dice")


def test_proposal_from_prediction_fills_lumen_keeps_spm_border():
    from common.proposals import BACKGROUND, BORDER, INTERIOR, proposal_from_prediction

    gland = np.zeros((40, 60), bool)
    gland[5:25, 5:25] = True
    gland[10:20, 10:20] = False  # the lumen the network left out: a 100 px hole
    spm = np.zeros((40, 60), np.uint8)
    spm[5:25, 5:10] = BORDER  # SPM's ring, partly
    spm[30:38, 40:55] = INTERIOR  # an SPM gland the model rejected
    refined = proposal_from_prediction(gland, spm, hole_area=101)
    assert (refined[10:20, 10:20] == INTERIOR).all()  # lumen filled
    assert (refined[5:25, 5:10] == BORDER).all() and (refined == BORDER).sum() == 100
    assert (refined[30:38, 40:55] == BACKGROUND).all()
    assert (refined > 0).sum() == 400
    # a hole of the threshold's size stays (strictly smaller is filled, as SPM's rule)
    assert (proposal_from_prediction(gland, spm, hole_area=100)[10:20, 10:20] == BACKGROUND).all()
    with pytest.raises(ValueError, match="differ in size"):
        proposal_from_prediction(gland, spm[:-1], 10)


def test_cap_gland_area_keeps_the_most_probable_whole_levels():
    from common.proposals import BORDER, INTERIOR, cap_gland_area

    spm = np.zeros((20, 20), np.uint8)
    spm[0:5, 0:10] = INTERIOR  # SPM's gland: 50 px
    spm[0, 0:10] = BORDER
    gland = np.zeros((20, 20), bool)
    gland[0:10, 0:12] = True  # the model's: 120 px
    probability = np.zeros((20, 20), np.uint8)
    probability[0:10, 0:12] = 200
    probability[0:4, 0:12] = 250  # 48 px above the rest
    probability[4, 0:12] = 230  # 12 more
    np.testing.assert_array_equal(cap_gland_area(gland, probability, spm, 3.0), gland)  # 120 <= 150: as is
    capped = cap_gland_area(gland, probability, spm, 1.0)  # limit 50: only the 48 px at 250 fit
    assert capped.sum() == 48 and capped[0:4, 0:12].all()
    assert cap_gland_area(gland, probability, spm, 1.2).sum() == 60  # 48 + 12 = 60 <= 60
    assert cap_gland_area(gland, probability / 255.0, spm, 1.2).sum() == 60  # floats rank alike
    assert not cap_gland_area(gland, probability, spm, 0.5).any()  # no whole level fits in 25 px
    # pixels outside the mask never enter, however probable
    probability[15:20, 15:20] = 255
    assert not cap_gland_area(gland, probability, spm, 1.0)[15:20, 15:20].any()
    assert not cap_gland_area(gland, probability, np.zeros_like(spm), 2.0).any()  # SPM found no gland
    with pytest.raises(ValueError, match="max_ratio"):
        cap_gland_area(gland, probability, spm, 0.0)
    with pytest.raises(ValueError, match="differ in size"):
        cap_gland_area(gland, probability[:-1], spm, 1.0)


def test_refine_proposals_cli(tmp_path, capsys):
    refine = load_tool("refine_proposals")
    pred, spm, out = tmp_path / "pred", tmp_path / "spm", tmp_path / "out"
    gland = np.zeros((30, 30), np.uint8)
    gland[5:25, 5:25] = 255
    gland[12:18, 12:18] = 0
    ring = np.zeros((30, 30), np.uint8)
    ring[5:7, 5:25] = 1
    for name in ("a", "b"):
        write_png(spm / f"{name}.png", ring)
    write_png(pred / "a.png", gland)
    assert refine.main([str(pred), str(spm), str(out), "--fill-holes", "100"]) == 1  # b has no prediction
    err = capsys.readouterr().err
    assert "b.png" in err and "no predicted mask" in err
    a = read_mask(out / "a.png")
    assert (a[12:18, 12:18] == 2).all() and (a[5:7, 5:25] == 1).all() and (a > 0).sum() == 400
    assert not (out / "b.png").exists()
    for onto_input in (pred, spm / "refined"):  # an input folder, or inside one
        assert refine.main([str(pred), str(spm), str(onto_input)]) == 2
        assert "is (inside) the input folder" in capsys.readouterr().err
    assert not (spm / "refined").exists()

    # --max-area-ratio: the prediction (364 px) is over 1.5x SPM's gland (40 px), so only the most probable
    # 8-bit level that fits (here the 40 px of SPM's ring, p = 250/255) stays; b's map is missing
    prob = tmp_path / "prob"
    probability = np.where(gland > 0, 150, 0).astype(np.uint8)
    probability[5:7, 5:25] = 250
    write_png(prob / "a.png", probability)
    write_png(pred / "b.png", gland)
    capped_out = tmp_path / "capped"
    args = [str(pred), str(spm), str(capped_out), "--fill-holes", "100"]
    assert refine.main([*args, "--max-area-ratio", "1.5", "--probabilities", str(prob)]) == 1
    captured = capsys.readouterr()
    assert "b.png" in captured.err and "no probability map" in captured.err
    assert "1 limited to 1.5x SPM's gland area" in captured.out
    a = read_mask(capped_out / "a.png")
    assert (a > 0).sum() == 40 and (a[5:7, 5:25] == 1).all()
    write_png(prob / "a.png", probability.astype(np.uint16) * 257)  # a 16-bit map is refused, not rescaled
    assert refine.main([*args, "--max-area-ratio", "1.5", "--probabilities", str(prob)]) == 1
    assert "expected an 8-bit probability map" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one without the other is a usage error
        refine.main([*args, "--max-area-ratio", "1.5"])
    assert "go together" in capsys.readouterr().err


def test_every_config_loads_and_the_self_training_round_only_changes_its_data_and_weight():
    root = Path(__file__).resolve().parents[2] / "configs"
    configs = {p.relative_to(root).as_posix(): Config.fromfile(str(p))
               for p in sorted(root.rglob("*.py")) if "_base_" not in p.parts}
    assert len(configs) >= 14
    recipe = configs["pspnet_mssg/pspnet_wres38w025-d8_histo-half128-selfsup_cpu.py"]
    round1 = configs["pspnet_mssg/pspnet_wres38w025-d8_histo-half128-selfsup-st1_cpu.py"]
    assert round1.train_dataloader.dataset.data_root == "glas/patches_half_st1"
    assert recipe.model.decode_head.interior_weight == 6.0 and round1.model.decode_head.interior_weight == 1.0
    round1.model.decode_head.interior_weight = recipe.model.decode_head.interior_weight
    assert round1.model == recipe.model and round1.train_cfg == recipe.train_cfg
    round1_ce = configs["pspnet_mssg/pspnet_wres38w025-d8_histo-half128-selfsup-st1_cpu_ce.py"]
    assert round1_ce.model.decode_head.omission is None
