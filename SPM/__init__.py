"""Selective Proposal Mining (SPM): per-image unsupervised mining of gland proposals.

Nothing in this package imports mmseg/mmcv, so SPM installs and runs with torch, numpy,
OpenCV, SciPy and scikit-learn alone.

Proposal map encoding (``gland_proposal/NAME.png``, uint8, same H x W as the image):

* ``0`` background (including border-cluster pieces removed as noise),
* ``1`` gland border (border-proposal pixels inside the filled gland region),
* ``2`` gland interior (filled gland region that is not border).
"""
BACKGROUND, BORDER, INTERIOR = 0, 1, 2
