"""Checks a training/testing config's inputs before the Runner starts, so that a missing data folder,
checkpoint or pretrained weight file is one ``error: PATH: reason`` line (exit 2) instead of a
traceback from deep inside mmengine."""
from __future__ import annotations

import os.path as osp
from typing import Any

from MSG.compat.safe_globals import check_checkpoint
from SPM.io import InputError, check_unique_stems, is_image_file, list_files


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


def check_train_inputs(cfg: Any) -> None:
    """Training data, ``load_from`` / the checkpoint ``--resume`` continues from, pretrained weights."""
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
    init_cfg = cfg.model.get("backbone", {}).get("init_cfg") or {}
    if init_cfg.get("type") == "Pretrained" and not osp.isfile(init_cfg.get("checkpoint", "")):
        raise InputError(init_cfg.get("checkpoint", ""), "pretrained backbone weights not found (see README, "
                                                         "Configs; or train from scratch with "
                                                         "--cfg-options model.backbone.init_cfg=None)")


def check_test_inputs(cfg: Any, checkpoint: str) -> None:
    """Test data (and, as ``--out`` names predictions after the image stems, no two images with one
    stem) and the checkpoint to test."""
    _check_dataset(cfg.get("test_dataloader"), "test")
    images = _dataset_folder(cfg.test_dataloader, "img_path")
    check_unique_stems(f for f in list_files(images) if is_image_file(f) and not f.stem.endswith("_anno"))
    check_checkpoint(checkpoint)
