"""Evaluation shared by every stage (SPM proposals, MSG predictions, baselines).

* :mod:`evaluation.pixel` -- pooled 2-class mIoU and gland Dice (the MSSG paper's protocol).
* :mod:`evaluation.glas_objects` -- the GlaS challenge's object F1, object Dice and object
  Hausdorff over a set of images.

numpy/SciPy only: no torch or mmseg import, so proposals can be scored without the MSG stack.
"""
from evaluation.glas_objects import ObjectSums, is_instance_map, label_objects, object_f1_counts, object_sums
from evaluation.pixel import PooledCounts, image_counts, pooled_metrics

__all__ = ["ObjectSums", "PooledCounts", "image_counts", "is_instance_map", "label_objects", "object_f1_counts",
           "object_sums", "pooled_metrics"]
