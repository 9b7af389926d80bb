"""Linear probe of a frozen backbone: how far its features alone separate gland from background.

The usual measure of a self-supervised representation is a linear classifier on frozen features; here
it is per pixel. A logistic regression on the backbone's stride-8 features is fitted to one set of
labels and scored against the masks on images it was not fitted on (folds by image, image ``i`` in
fold ``i % folds``). Fitted to SPM's proposals it is label-free: the linear form of training on the
proposals, which says whether the features group the proposals' noisy pixels the right way. Fitted to
the masks of a declared validation set it bounds what the features can separate linearly.

The same cross-fitted probe screens proposals: an image whose proposal its features disagree with
(the probe fitted to the other images' proposals predicts something else) is likelier to hold a wrong
proposal, so :func:`least_agreeing` names the images a training set may leave out.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import cv2
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from evaluation.pixel import PooledCounts


@torch.no_grad()
def backbone_features(backbone: nn.Module, rgb: torch.Tensor, mean: Sequence[float], std: Sequence[float]
                      ) -> np.ndarray:
    """The last output of ``backbone`` (eval mode) for one ``(3, H, W)`` RGB image in ``[0, 1]``.

    ``mean`` / ``std`` are the segmentation preprocessor's (0-255 scale). Returns ``(h, w, C)`` float32.
    """
    backbone.eval()
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    x = ((rgb.float() * 255 - m) / s).unsqueeze(0)
    out = backbone(x)
    feat = out[-1] if isinstance(out, (tuple, list)) else out
    return feat[0].permute(1, 2, 0).float().numpy()


def to_feature_grid(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean ``(H, W)`` mask on a ``(h, w)`` feature grid: a cell is gland where most of its area is."""
    fraction = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return fraction > 0.5


def fit_probe(features: Sequence[np.ndarray], labels: Sequence[np.ndarray], max_pixels: int = 50000,
              seed: int = 0) -> Pipeline:
    """Fit standardisation + logistic regression to the cells of ``features`` (each ``(h, w, C)``)
    labelled by the boolean ``labels`` (each ``(h, w)``), on at most ``max_pixels`` cells drawn evenly.

    Raises:
        ValueError: the labels hold one class only (nothing to separate).
    """
    x = np.concatenate([f.reshape(-1, f.shape[-1]) for f in features])
    y = np.concatenate([lab.reshape(-1) for lab in labels]).astype(np.int64)
    if np.unique(y).size < 2:
        raise ValueError("the probe's labels hold one class only")
    if len(y) > max_pixels:
        keep = np.random.default_rng(seed).choice(len(y), max_pixels, replace=False)
        x, y = x[keep], y[keep]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))
    return probe.fit(x, y)


@contextmanager
def convergence_note(fitted_to: str) -> Iterator[None]:
    """Fits inside print one ``note:`` line when a probe stopped at its iteration limit, instead of
    scikit-learn's warning per fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        print(f"note: a probe fitted to {fitted_to} stopped at its iteration limit before full convergence")


def probe_logits(probe: Pipeline, features: np.ndarray) -> np.ndarray:
    """The probe's gland logit of every cell of ``(h, w, C)`` features: ``(h, w)`` float32."""
    h, w, c = features.shape
    return probe.decision_function(features.reshape(-1, c)).reshape(h, w).astype(np.float32)


def probe_mask(probe: Pipeline, features: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The probe's gland mask at ``shape`` (H, W): its logit per cell, bilinearly upsampled, > 0."""
    return upsample_logits(probe_logits(probe, features), shape) > 0


def upsample_logits(logits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(logits, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def cross_fit_logits(features: Sequence[np.ndarray], labels: Sequence[np.ndarray], folds: int = 2,
                     max_pixels: int = 50000, seed: int = 0) -> list[np.ndarray]:
    """Each image's ``(h, w)`` cell logits from a probe fitted on the other folds only (image ``i`` in
    fold ``i % folds``)."""
    if not 2 <= folds <= len(features):
        raise ValueError(f"folds must lie between 2 and the number of images ({len(features)}), got {folds}")
    logits: list[np.ndarray | None] = [None] * len(features)
    for fold in range(folds):
        held_out = [i for i in range(len(features)) if i % folds == fold]
        fitted = [i for i in range(len(features)) if i % folds != fold]
        probe = fit_probe([features[i] for i in fitted], [labels[i] for i in fitted], max_pixels, seed + fold)
        for i in held_out:
            logits[i] = probe_logits(probe, features[i])
    return logits


def cross_fit(features: Sequence[np.ndarray], labels: Sequence[np.ndarray], shapes: Sequence[tuple[int, int]],
              folds: int = 2, max_pixels: int = 50000, seed: int = 0) -> list[np.ndarray]:
    """Each image's probe mask at its ``shapes`` entry, from a probe fitted on the other folds only."""
    logits = cross_fit_logits(features, labels, folds, max_pixels, seed)
    return [upsample_logits(lg, shape) > 0 for lg, shape in zip(logits, shapes, strict=True)]


def agreement(predicted: np.ndarray, labels: np.ndarray) -> float:
    """2-class mIoU of two boolean masks of one image, as the evaluation scores it (a class absent from
    both masks is left out of the mean)."""
    counts = PooledCounts()
    counts.update(predicted, labels)
    return counts.miou()


def least_agreeing(agreements: Sequence[float], fraction: float) -> list[int]:
    """Indices of the ``round(fraction * n)`` images of lowest agreement (ties: the earlier image first)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the fraction to drop must lie in [0, 1), got {fraction}")
    order = sorted(range(len(agreements)), key=lambda i: (agreements[i], i))
    return sorted(order[:round(fraction * len(agreements))])
