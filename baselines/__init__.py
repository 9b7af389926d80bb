"""Baselines re-implemented for comparison with MSSG (see the README's *Baselines* sections).

* :mod:`baselines.sgscn` — SGSCN (Ahn, Feng, Kim, MICCAI 2021), a per-image self-supervised clustering
  network: ``config`` (hyper-parameters), ``loss`` (objective, early stop), ``trainer`` (per-image CSNet),
  ``select`` (clusters to a gland mask); command line ``tools/sgscn.py``, oracle scoring ``tools/oracle_eval.py``.
* :mod:`baselines.picie` — PiCIE (Cho et al., CVPR 2021), clustering with photometric invariance and geometric
  equivariance over the whole set: ``net``, ``kmeans``, ``loss``, ``augment``, ``trainer``; command line
  ``tools/picie.py``, set-level oracle ``tools/oracle_eval.py --set-level``.

Each package's docstring documents the method as checked against the original code, and the deliberate
differences from it. The packages hold the library code only; the command lines are thin scripts in ``tools/``.
"""
