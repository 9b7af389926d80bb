"""Baselines re-implemented for comparison with MSSG (see the README's *Baselines* sections).

* :mod:`baselines.sgscn_clustering` — SGSCN (Ahn, Feng, Kim, MICCAI 2021), a per-image self-supervised
  clustering network; command line ``baselines/SGSCN.py``, oracle scoring ``baselines/oracle_eval.py``.
* :mod:`baselines.picie_training` — PiCIE (Cho et al., CVPR 2021), clustering with photometric invariance and
  geometric equivariance over the whole set; command line ``baselines/PiCIE.py``, set-level oracle
  ``baselines/oracle_eval.py --set-level``.
"""
