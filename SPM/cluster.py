"""K-means on pixel embeddings: the exact reference path and a fast subset-fit path."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

# The original called KMeans(n_clusters, random_state=9) under scikit-learn 1.0,
# whose default n_init was 10 (later versions changed it to "auto").
KMEANS_SEED = 9
KMEANS_N_INIT = 10


def kmeans_exact(embeddings: np.ndarray, k: int, seed: int = KMEANS_SEED) -> np.ndarray:
    """scikit-learn K-means on all pixels, as the original code ran it.

    Args:
        embeddings: ``(N, C)`` float array.

    Returns:
        ``(N,)`` int64 cluster ids in ``[0, k)``.
    """
    km = KMeans(n_clusters=k, random_state=seed, n_init=KMEANS_N_INIT)
    return km.fit_predict(np.asarray(embeddings, dtype=np.float32)).astype(np.int64)


def assign_nearest(embeddings: torch.Tensor, centers: torch.Tensor, chunk: int = 262144) -> torch.Tensor:
    """Index of the nearest center (squared Euclidean) for each row, computed in chunks.

    Args:
        embeddings: ``(N, C)``; centers: ``(K, C)``; both on the same device.

    Returns:
        ``(N,)`` int64.
    """
    embeddings = embeddings.float()
    centers = centers.float().to(embeddings.device)
    c_sq = (centers * centers).sum(1)
    out = torch.empty(embeddings.shape[0], dtype=torch.int64, device=embeddings.device)
    for start in range(0, embeddings.shape[0], chunk):
        block = embeddings[start : start + chunk]
        # ||x||^2 is constant per row, so argmin of ||c||^2 - 2 x.c is the nearest center.
        out[start : start + chunk] = (c_sq - 2.0 * block @ centers.T).argmin(1)
    return out


def kmeans_fast(
    embeddings: torch.Tensor, k: int, seed: int = KMEANS_SEED, sample_size: int = 50000
) -> np.ndarray:
    """K-means fitted (n_init 10) on a random pixel subset, then every pixel assigned to the
    nearest center; the subset keeps the cluster geometry while costing a fraction of the fit.

    Args:
        embeddings: ``(N, C)`` tensor on any device.

    Returns:
        ``(N,)`` int64 numpy array of cluster ids.
    """
    n = embeddings.shape[0]
    if n <= sample_size:
        return kmeans_exact(embeddings.float().cpu().numpy(), k, seed)
    gen = np.random.default_rng(seed)
    idx = np.sort(gen.choice(n, size=sample_size, replace=False))
    subset = embeddings[torch.from_numpy(idx).to(embeddings.device)].float().cpu().numpy()
    km = KMeans(n_clusters=k, random_state=seed, n_init=KMEANS_N_INIT).fit(subset)
    centers = torch.from_numpy(km.cluster_centers_.astype(np.float32))
    return assign_nearest(embeddings, centers).cpu().numpy()
