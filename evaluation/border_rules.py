"""Label-free rules that pick SPM's border cluster, scored against masks (a declared validation set).

SPM takes the darkest cluster with more than ``min_pixels`` pixels as the glands' border. The rules
here choose among the same candidates (the clusters above that size) from quantities that need no
label, and SPM's post-processing (:func:`SPM.select.remove_noise`, :func:`SPM.select.fill_glands`)
turns the chosen cluster into the gland region:

- ``darkest``: SPM's cue.
- ``brightest``: the palest candidate.
- ``prototype:F``: the candidate whose feature ``F``, centred on its image (stain and brightness differ
  between images), lies nearest the set's prototype -- the median over all images of the darkest
  candidate's feature. The cue holds in most images, so the prototype describes a border without a
  label, and an image whose darkest cluster is unlike the set's borders can pick another one. ``F`` is
  one of :data:`FEATURES`: mean gray, haematoxylin or eosin optical density (``rgb2hed``), both, or
  mean RGB; distances are in units of the prototype's spread over the set.

:func:`oracle_choice` picks the best single candidate with the mask: an upper bound for any such
rule, not a method.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.color import rgb2hed

from evaluation.pixel import PooledCounts
from SPM.select import cluster_stats, fill_glands, remove_noise, select_border_cluster

FEATURES = ("gray", "H", "E", "HE", "RGB")


@dataclass
class ImageClusters:
    """One image's candidate border clusters: their features and the gland region each would give."""

    name: str
    candidates: list[int]
    darkest: int
    features: dict[int, dict[str, np.ndarray]]  # candidate -> feature name -> 1-D vector
    glands: dict[int, np.ndarray]  # candidate -> (H, W) bool gland region after SPM's post-processing


def image_clusters(name: str, image_bgr: np.ndarray, labels: np.ndarray, k: int, min_pixels: int = 10000,
                   hole_area: int = 15000) -> ImageClusters:
    """Candidates, image-centred features and gland regions of one cluster map.

    Args:
        image_bgr: ``(H, W, 3)`` uint8 image.
        labels: ``(H, W)`` cluster ids in ``[0, k)`` (SPM's ``cluster_label`` map).
    """
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    sizes, means = cluster_stats(gray, labels, k)
    darkest, _ = select_border_cluster(sizes, means, min_pixels)
    candidates = sorted({*np.flatnonzero(sizes > min_pixels).tolist(), darkest})
    hed = rgb2hed(image_bgr[..., ::-1])[..., :2]
    rgb = image_bgr[..., ::-1].reshape(-1, 3).astype(np.float64)
    centre = {"gray": np.array([gray.mean()]), "HE": hed.reshape(-1, 2).mean(0), "RGB": rgb.mean(0)}
    features, glands = {}, {}
    for c in candidates:
        inside = labels == c
        f = {"gray": np.array([means[c]]) - centre["gray"], "HE": hed[inside].mean(0) - centre["HE"],
             "RGB": rgb[inside.ravel()].mean(0) - centre["RGB"]}
        f["H"], f["E"] = f["HE"][:1], f["HE"][1:]
        features[c] = f
        glands[c] = fill_glands(remove_noise(inside), hole_area)
    return ImageClusters(name, candidates, darkest, features, glands)


def darkest_choice(image: ImageClusters) -> int:
    return image.darkest


def brightest_choice(image: ImageClusters) -> int:
    return max(image.candidates, key=lambda c: float(image.features[c]["gray"][0]))


def prototype_rule(images: Sequence[ImageClusters], feature: str) -> Callable[[ImageClusters], int]:
    """The ``prototype:feature`` rule, its prototype taken over ``images`` (no label read)."""
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; choose from {', '.join(FEATURES)}")
    borders = np.stack([im.features[im.darkest][feature] for im in images])
    prototype = np.median(borders, axis=0)
    spread = borders.std(axis=0) + 1e-12

    def choose(image: ImageClusters) -> int:
        return min(image.candidates,
                   key=lambda c: float(np.linalg.norm((image.features[c][feature] - prototype) / spread)))

    return choose


def oracle_choice(image: ImageClusters, gt: np.ndarray) -> int:
    """The candidate whose gland region scores the highest mIoU against ``gt`` (uses the mask)."""
    def miou(c: int) -> float:
        counts = PooledCounts()
        counts.update(image.glands[c], gt)
        return counts.miou()
    return max(image.candidates, key=miou)


def rules_for(images: Sequence[ImageClusters]) -> dict[str, Callable[[ImageClusters], int]]:
    """Every label-free rule, by name, with its prototypes taken over ``images``."""
    return {"darkest": darkest_choice, "brightest": brightest_choice,
            **{f"prototype:{f}": prototype_rule(images, f) for f in FEATURES}}
