"""Checks a training/testing config's inputs before the Runner starts, so that a missing data folder,
checkpoint or pretrained weight file is one ``error: PATH: reason`` line (exit 2) instead of a
traceback from deep inside mmengine."""
from __future__ import annotations

import os.path as osp
from typing import Any

from PIL import Image

from common.io import InputError, check_unique_stems, find_ground_truth, is_image_file, list_files
from MSG.backbones.wide_res38 import WideRes38, check_pretrained_checkpoint
from MSG.compat.safe_globals import check_checkpoint


def _dataset_folder(dataloader: Any, key: str) -> str:
    """The folder ``data_root/data_prefix[key]`` of a dataloader config's dataset."""
    dataset = dataloader.get("dataset", {})
    prefixes = dataset.get("data_prefix", {}) or {}
    return osp.join(dataset.get("data_root", "") or "", prefixes.get(key, "") or "")


def _check_dataset(dataloader: Any, role: str) -> None:
    if not dataloader:
        return
    for key in ("img_path", "seg_map_path"):
        folder = _dataset_folder(dataloader, key)
        if not osp.isdir(folder):
            raise InputError(folder, f"{role} data folder not found (see glas/README.md)")


def _size(path: str) -> tuple[int, int]:
    """``(width, height)`` from the file header (upright, as the readers return it)."""
    try:
        with Image.open(path) as pil:
            w, h = pil.size
            return (h, w) if int(pil.getexif().get(0x0112, 1) or 1) in (5, 6, 7, 8) else (w, h)
    except OSError as err:
        raise InputError(path, f"cannot read image ({err.__class__.__name__})") from None


def _check_pairs(dataloader: Any, role: str, find_map) -> None:
    """Every image of the dataset has its map, of the same size."""
    images = _dataset_folder(dataloader, "img_path")
    maps = _dataset_folder(dataloader, "seg_map_path")
    files = [f for f in list_files(images) if is_image_file(f) and not f.stem.endswith("_anno")]
    if not files:
        raise InputError(images, f"no {role} images")
    for f in files:
        path = find_map(maps, f.stem)
        if _size(str(path)) != _size(str(f)):
            (w, h), (iw, ih) = _size(str(path)), _size(str(f))
            raise InputError(path, f"size {w}x{h} differs from its image {iw}x{ih} ({f})")


def _proposal_patch(folder: str, stem: str) -> str:
    path = osp.join(folder, f"{stem}.png")
    if not osp.isfile(path):
        raise InputError(path, "missing proposal patch for the image patch of the same name")
    return path


def _check_pretrained_backbone(backbone: Any) -> None:
    """The ``Pretrained`` checkpoint of a WideRes38 backbone exists and fits it (no key in common, or
    another width, would otherwise start from scratch or fail deep inside the Runner)."""
    init_cfg = backbone.get("init_cfg") or {}
    if init_cfg.get("type") != "Pretrained":
        return
    path = init_cfg.get("checkpoint", "")
    if not osp.isfile(path):
        raise InputError(path, "pretrained backbone weights not found (see README, Configs; or train from "
                               "scratch with --cfg-options model.backbone.init_cfg=None)")
    if backbone.get("type") not in ("WideRes38", WideRes38):
        return
    kwargs = {k: v for k, v in backbone.items() if k not in ("type", "init_cfg")}
    check_pretrained_checkpoint(path, init_cfg.get("prefix"), **kwargs)


def check_train_inputs(cfg: Any) -> None:
    """Training data (every patch with its proposal patch), ``load_from`` / the checkpoint ``--resume``
    continues from, pretrained weights."""
    _check_dataset(cfg.get("train_dataloader"), "training")
    if cfg.get("val_cfg") and cfg.get("val_dataloader"):
        _check_dataset(cfg.get("val_dataloader"), "validation")
    if cfg.get("load_from"):
        check_checkpoint(cfg.load_from)
    elif cfg.get("resume"):
        last = osp.join(cfg.work_dir, "last_checkpoint")
        if osp.isfile(last):
            with open(last) as fh:
                check_checkpoint(fh.read().strip())
    _check_pretrained_backbone(cfg.model.get("backbone", {}))
    _check_pairs(cfg.train_dataloader, "training", _proposal_patch)


def check_test_inputs(cfg: Any, checkpoint: str) -> None:
    """Test data (and, as ``--out`` names predictions after the image stems, no two images with one
    stem) and the checkpoint to test."""
    _check_dataset(cfg.get("test_dataloader"), "test")
    images = _dataset_folder(cfg.test_dataloader, "img_path")
    check_unique_stems(f for f in list_files(images) if is_image_file(f) and not f.stem.endswith("_anno"))
    check_checkpoint(checkpoint)
    _check_pairs(cfg.test_dataloader, "test", find_ground_truth)
