"""PiCIE's clustering: seeded full-batch K-means, nearest-centroid labels, per-pixel logits against the
centroids and the cluster weights of the cross-entropy."""
from __future__ import annotations

import torch

BALANCE_MODES = ("original", "inverse", "none")


def kmeans(features: torch.Tensor, k: int, iters: int = 20, seed: int = 0,
           max_points: int | None = None) -> torch.Tensor:
    """Lloyd's K-means (squared Euclidean), seeded.

    Args:
        features: ``(N, D)``; N >= k.
        k: number of clusters.
        iters: Lloyd iterations.
        seed: seeds the initial centroids (k distinct random points) and the subsample.
        max_points: cluster a random subsample of this many points when N is larger.

    Returns:
        ``(k, D)`` float32 centroids (on ``features``' device).
    """
    x = features.detach().float()
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} points, got {n}")
    gen = torch.Generator().manual_seed(seed)
    if max_points is not None and n > max_points:
        x = x[torch.randperm(n, generator=gen)[:max_points].to(x.device)]
        n = max_points
    centroids = x[torch.randperm(n, generator=gen)[:k].to(x.device)].clone()
    for _ in range(iters):
        dist = torch.cdist(x, centroids).pow(2)
        labels = dist.argmin(1)
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        new = sums / counts.clamp_min(1).unsqueeze(1)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):  # re-seed empty clusters at the points farthest from their centroid
            worst = dist.gather(1, labels[:, None]).squeeze(1).topk(len(empty)).indices
            new[empty] = x[worst]
        if torch.equal(new, centroids):
            break
        centroids = new
    return centroids


def assign(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Nearest centroid (squared Euclidean): ``(N, D)``, ``(k, D)`` -> ``(N,)`` int64 labels."""
    return torch.cdist(features.float(), centroids.float()).argmin(1)


def cluster_logits(features: torch.Tensor, centroids: torch.Tensor, metric: str = "dot") -> torch.Tensor:
    """Per-pixel scores against the centroids: ``(B, D, h, w)``, ``(k, D)`` -> ``(B, k, h, w)``.

    ``metric="dot"``: ``<f, c_k>``, the original's frozen classifier (training and prediction);
    ``"euclidean"``: ``-|f - c_k|^2`` (argmax = :func:`assign`, the original's labelling).
    """
    dot = torch.einsum("bdhw,kd->bkhw", features, centroids.to(features.dtype))
    if metric == "dot":
        return dot
    if metric == "euclidean":
        return 2 * dot - features.pow(2).sum(1, keepdim=True) - centroids.pow(2).sum(1).view(1, -1, 1, 1)
    raise ValueError(f"metric must be 'dot' or 'euclidean', got {metric!r}")


def cluster_weights(counts: torch.Tensor, balance: str = "original") -> torch.Tensor | None:
    """CE class weights from the epoch's ``(k,)`` label counts: ``"original"`` counts / sum (as the
    released code), ``"inverse"`` (1 / count) normalised to sum 1 (empty clusters 0), ``"none"``: None."""
    counts = counts.float()
    if balance == "none":
        return None
    if balance == "original":
        return counts / counts.sum()
    if balance == "inverse":
        inv = torch.where(counts > 0, 1.0 / counts.clamp_min(1), torch.zeros_like(counts))
        return inv / inv.sum()
    raise ValueError(f"balance must be one of {BALANCE_MODES}, got {balance!r}")
