"""K-means paths: the fast subset fit recovers the same partition as the exact fit."""
from __future__ import annotations

import numpy as np
import torch

from SPM.cluster import assign_nearest, kmeans_exact, kmeans_fast


def _blobs(rng, n_per=3000, k=4, dim=8):
    centers = rng.normal(0, 6, (k, dim))
    x = np.concatenate([c + rng.normal(0, 1, (n_per, dim)) for c in centers]).astype(np.float32)
    truth = np.repeat(np.arange(k), n_per)
    return x, truth


def _same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_exact_and_fast_agree_on_blobs(rng):
    x, truth = _blobs(rng)
    exact = kmeans_exact(x, 4)
    fast = kmeans_fast(torch.from_numpy(x), 4, sample_size=1000)
    assert _same_partition(exact, truth)
    assert _same_partition(fast, truth)
    assert fast.dtype == np.int64 and fast.shape == (x.shape[0],)


def test_fast_falls_back_to_exact_for_small_inputs(rng):
    x, _ = _blobs(rng, n_per=100)
    np.testing.assert_array_equal(kmeans_fast(torch.from_numpy(x), 4, sample_size=10_000), kmeans_exact(x, 4))


def test_assign_nearest_by_hand():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = torch.tensor([[1.0, 1.0], [9.0, -1.0], [-1.0, 8.0], [6.0, 0.0]])
    assert assign_nearest(pts, centers, chunk=3).tolist() == [0, 1, 2, 1]
