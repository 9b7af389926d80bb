"""Baselines re-implemented for comparison with MSSG (see the README's *Baselines* sections).

* :mod:`baselines.sgscn_clustering` — SGSCN (Ahn, Feng, Kim, MICCAI 2021), a per-image self-supervised
  clustering network; command line ``baselines/SGSCN.py``, oracle scoring ``baselines/oracle_eval.py``.
"""
