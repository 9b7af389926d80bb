"""Evaluation shared by every stage (SPM proposals, MSG predictions, baselines).

* :mod:`evaluation.pixel` -- pooled 2-class mIoU and gland Dice (the MSSG paper's protocol).
* :mod:`evaluation.glas_objects` -- the GlaS challenge's object F1, object Dice and object
  Hausdorff over a set of images.
* :mod:`evaluation.groups` -- the same, pooled over each group of images of a table (GlaS's grades).
* :mod:`evaluation.calibration` -- reliability of probability maps: per-bin gland frequency and ECE.

numpy/SciPy only: no torch or mmseg import, so proposals can be scored without the MSG stack.
"""
from evaluation.glas_objects import ObjectSums, is_instance_map, label_objects, object_f1_counts, object_sums
from evaluation.groups import group_scores, read_groups
from evaluation.pixel import PooledCounts, image_counts, pooled_metrics

__all__ = ["ObjectSums", "PooledCounts", "group_scores", "image_counts", "is_instance_map", "label_objects",
           "object_f1_counts", "object_sums", "pooled_metrics", "read_groups"]
