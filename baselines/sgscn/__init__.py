"""SGSCN: Spatial Guided Self-supervised Clustering Network (Ahn, Feng, Kim, MICCAI 2021), re-implemented.

Per image, a fresh CSNet (:class:`SPM.model.CSNet`, the same architecture as the original's: conv3x3 →
ReLU → BN, ``nConv - 1`` × the same, conv1x1 → BN; 100 channels, ``nConv`` 2) is optimised with SGD
(lr 0.1, momentum 0.9) for at most ``maxIter`` (50) steps; the pixel clusters are the argmax channels of
its output. Checked against the public code (``demo_final.py`` and ``src/center.py`` of
osmond332/Spatial_Guided_Self_Supervised_Clustering), on the output ``o`` of shape ``(C, H, W)``
(batch of one, BGR input ``cv2.imread / 255``, model in train mode throughout)::

    L = stepsize_ce · CE(o, argmax_c o)                             # mean over pixels; stepsize_ce = 1
      + stepsize_ss · (mean|o[:, 1:, :] - o[:, :-1, :]| + mean|o[:, :, 1:] - o[:, :, :-1]|)   # = 5
      + sum_c sum_{i,j} p_c(i, j) · ((x_i - x_c)^2 + (y_j - y_c)^2) # centre loss, weight 1, SUM over c

    p_c(i, j) = (o_c(i, j) + 1e-3) / sum_{i,j} (o_c(i, j) + 1e-3)   # not a softmax; BN outputs may be < 0
    x_i = i / H · 2 - 1  (row i),   y_j = j / W · 2 - 1  (column j)  # in [-1, 1 - 2/H], not symmetric
    x_c = sum_{i,j} p_c(i, j) x_i,  y_c = sum_{i,j} p_c(i, j) y_j    # not detached; the normaliser
                                                                      # sum(o_c + eps) is not detached either

(As ``sum p_c = 1``, the variance is stationary in its centre, so detaching ``x_c, y_c`` would not change
the gradient; the normaliser's gradient does matter.)

Step ``t``: forward, loss, ``n = #distinct argmax labels of this forward`` (counted *before* the step),
backward, ``optimizer.step()``, then stop if ``n <= minLabels`` (3): the step that met the rule is still
taken. The final labels are ``argmax_c`` of one more forward, still in **train** mode (BatchNorm uses the
batch statistics; the original never calls ``model.eval()``).

In train mode ``sum_{i,j} o_c = H·W·beta_c`` (beta: bn3's bias, 0 at init), so the normaliser of ``p_c`` is
``H·W·(beta_c + 1e-3)``: tiny, and zero if training drives ``beta_c`` to ``-1e-3``. The centre loss can then
be large, negative or non-finite; that is the original's behaviour and it is kept (a non-finite loss is
reported as a warning). ``center_softmax=True`` (``--center-softmax``) is an opt-in, well-posed variant:
``p_c = softmax over pixels of o_c``.

Differences from the original code, on purpose:

* The centre loss is **on** by default (the method of the paper); the original's ``demo_final.py`` needs
  ``--center`` for it (its default is off); ``--no-center`` gives that default.
* Values are the same, but computed once and vectorised: the original builds the centres (``get_centers``)
  and the variances (``get_variance``) in two Python loops over channels; here both come from the row and
  column marginals of ``p_c`` (``sum_{i,j} p (x_i - x_c)^2 = sum_i (sum_j p)(x_i - x_c)^2``), so only the
  floating-point summation order differs. The original's coordinate helper is CUDA-only; this runs anywhere.
* ``seed`` seeds CSNet's initialisation per image (the original was unseeded); the cluster colours are a
  fixed palette (the original drew ``np.random.randint`` colours).
* Fast path (default): bf16 autocast where the hardware runs it natively and faster than fp32
  (``common.precision.bf16_supported``) and channels-last memory, the loss in fp32 (CE + continuity as
  :class:`SPM.train.FusedSPMLoss`, equal to autograd); ``exact=True`` (``--exact``) is fp32 eager, as the
  original. The final forward runs under ``no_grad`` (same values).
* The original only writes a colour map per image. Turning clusters into a gland mask is this project's
  addition: :func:`gland_pseudo_mask` (label-free: the darkest cluster with more than ``min_pixels``
  pixels, the cue SPM uses for its border proposal) and the per-image majority-vote oracle
  :func:`evaluation.oracles.oracle_majority_labels` (uses the ground truth; evaluation only).

Layout: :mod:`~baselines.sgscn.config` (:class:`SGSCNConfig`), :mod:`~baselines.sgscn.loss` (the objective and
the early stop), :mod:`~baselines.sgscn.trainer` (per-image CSNet optimisation), :mod:`~baselines.sgscn.select`
(clusters to a gland mask). Command line: ``tools/sgscn.py``.
"""
from baselines.sgscn.config import SGSCNConfig
from baselines.sgscn.loss import CENTER_EPS, center_loss, count_labels, normalised_coordinates, sgscn_loss, should_stop
from baselines.sgscn.select import GlandSelection, gland_pseudo_mask, select_gland_cluster
from baselines.sgscn.trainer import SGSCNResult, SGSCNTrainer, cluster_image

__all__ = ["CENTER_EPS", "GlandSelection", "SGSCNConfig", "SGSCNResult", "SGSCNTrainer", "center_loss",
           "cluster_image", "count_labels", "gland_pseudo_mask", "normalised_coordinates", "select_gland_cluster",
           "sgscn_loss", "should_stop"]
