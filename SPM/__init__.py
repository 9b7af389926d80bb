"""Selective Proposal Mining (SPM): per-image unsupervised mining of gland proposals.

Nothing in this package imports mmseg/mmcv, so SPM installs and runs with torch, numpy,
OpenCV, SciPy and scikit-learn alone. Its maps use the encoding of :mod:`common.proposals`
(0 background, 1 border, 2 interior).
"""
from common.proposals import BACKGROUND, BORDER, INTERIOR

__all__ = ["BACKGROUND", "BORDER", "INTERIOR"]
