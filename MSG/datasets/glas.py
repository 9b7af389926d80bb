"""GlaS data sets for MSG.

* ``GlaSProposalDataset`` (training): image patches and SPM proposal patches (0 background,
  1 border, 2 interior, 255 padding) as written by ``tools/crop_img_and_gt.py``
  (``images/NAME.png`` + ``proposals/NAME.png``). Ground truth is never read.
* ``GlaSDataset`` (evaluation): whole images and GT masks, in either the project's layout
  (``images/NAME.png`` + ``masks/NAME.png``) or the official flat layout (``NAME.bmp`` beside
  ``NAME_anno.bmp``). Load the masks with ``LoadBinaryAnnotations``: any value > 0 is gland, so
  0/255 masks and instance-id masks both become 0/1.
"""
from __future__ import annotations

import os.path as osp

import numpy as np
from mmengine.fileio import list_dir_or_file
from mmseg.datasets.basesegdataset import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS, TRANSFORMS

from common.io import IMAGE_EXTENSIONS, find_ground_truth

GLAS_METAINFO = dict(classes=("background", "gland"), palette=[[0, 0, 0], [255, 255, 255]])


@DATASETS.register_module()
class GlaSProposalDataset(BaseSegDataset):
    """Training patches with their SPM proposals (values 0/1/2, 255 ignore)."""

    METAINFO = GLAS_METAINFO

    def __init__(self, img_suffix: str = ".png", seg_map_suffix: str = ".png", **kwargs) -> None:
        kwargs.setdefault("data_prefix", dict(img_path="images", seg_map_path="proposals"))
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=False, **kwargs)


@DATASETS.register_module()
class GlaSDataset(BaseSegDataset):
    """Whole GlaS images with GT masks, project layout or official flat layout."""

    METAINFO = GLAS_METAINFO

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("data_prefix", dict(img_path="images", seg_map_path="masks"))
        super().__init__(img_suffix=".png", seg_map_suffix=".png", reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> list[dict]:
        img_dir = self.data_prefix.get("img_path", "")
        ann_dir = self.data_prefix.get("seg_map_path", "") or img_dir
        data_list = []
        for name in sorted(list_dir_or_file(img_dir, list_dir=False, recursive=False)):
            stem, ext = osp.splitext(name)
            if ext.lower() not in IMAGE_EXTENSIONS or stem.endswith("_anno") or name.startswith("."):
                continue
            data_list.append(dict(
                img_path=osp.join(img_dir, name),
                seg_map_path=str(find_ground_truth(ann_dir, stem)),
                label_map=self.label_map,
                reduce_zero_label=False,
                seg_fields=[],
            ))
        return data_list


@TRANSFORMS.register_module()
class LoadBinaryAnnotations(LoadAnnotations):
    """LoadAnnotations for GT masks: every value > 0 becomes 1 (gland), so 0/255 and instance maps work."""

    def _load_seg_map(self, results: dict) -> None:
        super()._load_seg_map(results)
        results["gt_seg_map"] = (results["gt_seg_map"] > 0).astype(np.uint8)
