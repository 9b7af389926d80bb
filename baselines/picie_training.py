"""PiCIE (Cho, Mall, Bala, Hariharan, CVPR 2021): unsupervised semantic segmentation by clustering pixel
features that are invariant to photometric and equivariant to geometric transforms.

Re-implemented from the paper and the public code (github janghyuncho/PiCIE: ``train_picie.py``,
``commons.py``, ``utils.py``, ``data/coco_train_dataset.py``, ``data/custom_transforms.py``,
``sh_files/train_picie.sh``; ``modules/fpn.py`` was not available to check, see below).

Method (one epoch, as ``train_picie.py``'s ``main``)
---------------------------------------------------
1. Draw, per image, this epoch's random transforms (``reshuffle``): a photometric jitter per view
   (different for view 1 and view 2) and one geometric transform ``g`` (crop + flip) shared by both.
2. Cluster: with the network in eval mode, compute the L2-normalised features of the whole set for
   view 1 (``g`` applied to the *image*, then the network) and for view 2 (the network, then ``g``
   applied to the *feature map*), and run K-means on each: centroids ``C1``, ``C2`` (``K`` x ``D``).
3. Label: every feature vector gets the nearest centroid (squared Euclidean distance,
   ``compute_negative_euclidean``): labels ``y1`` (view 1, ``C1``) and ``y2`` (view 2, ``C2``), fixed for
   the epoch, with the per-cluster pixel counts.
4. Train with the same per-image transforms, centroids frozen as a 1x1 conv classifier
   (weight = centroids, bias 0, so logits are the dot products ``<f, c_k>`` of the normalised feature
   with the unnormalised centroids), cross-entropy with cluster weights:

       within = (CE(<f1, C1>, y1) + CE(<f2, C2>, y2)) / 2
       across = (CE(<f1, C2>, y2) + CE(<f2, C1>, y1)) / 2        (invariance + equivariance)
       total  = (within + across) / 2

Checked against the original code
---------------------------------
* Losses: the four CE terms, their pairing (classifier2 with label2, classifier1 with label1) and the
  averaging ``(across + within) / 2`` as above; the optional ``--mse`` term is not implemented.
* Logits: dot product with the centroids (``classifier.weight = centroids``, bias zero-initialised and
  frozen), on L2-normalised features (``--metric_train cosine``, the default). Labels (step 3) use the
  negative squared Euclidean distance ``-(1 - 2<f, c> + |c|^2)`` instead, so the two can disagree where
  centroid norms differ: :func:`cluster_logits` has both (``metric="dot"`` for training and the final
  prediction as the original's classifier, ``metric="euclidean"`` agreeing with :func:`assign`).
* Feature normalisation: outside the network, after the geometric transform of view 2's feature map
  (``F.normalize(featmap, dim=1)`` in ``train`` / ``run_mini_batch_kmeans`` / ``compute_labels``):
  :class:`PiCIENet` returns raw features and the trainer normalises after :func:`apply_geometric`.
* Balancing (on unless ``--no_balance``): ``CrossEntropyLoss(weight=counts / counts.sum())`` with the
  label counts of the epoch, i.e. weights **proportional** to cluster size, not inverse (the code's
  behaviour; janghyuncho/PiCIE issue #28 raised it). ``balance="original"`` (default) keeps it;
  ``"inverse"`` (``1 / count``, normalised; empty clusters 0) and ``"none"`` are options.
* K-means: per epoch and per view, on the normalised features of the set (the original: faiss
  ``Clustering`` on the first ``num_init_batches`` batches, 10 iterations in ``train_picie.sh``, then
  mini-batch centroid updates over the remaining batches). Here: full-batch Lloyd in torch on all
  feature vectors (a seeded random subsample above ``max_points``), seeded random-point init, empty
  clusters re-seeded at the worst-fit points; centroids unnormalised (faiss default, not spherical).
* Transforms (``data/custom_transforms.py``): colour jitter brightness/contrast/saturation 0.3 and
  hue 0.1, each with p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2] with p = 0.5, drawn
  independently per view; geometric: a square crop of side ``int(s * side)``, ``s ~ U(min_scale = 0.5, 1)``,
  at ``round((side - crop) * u)``, resized back (bilinear, ``align_corners=False``), then a horizontal
  flip with p = 0.5 (``--h_flip``; ``--v_flip`` optional). The same relative crop is applied to the
  image (view 1) and to the feature map (view 2), each with its own size, as the original.
* Optimiser: Adam, lr 1e-3 (``--lr`` default; the weight decay is only used with SGD), 10 epochs.
* Final clusters (``--repeats 1``): a fresh K-means on the features of the un-augmented set, then the
  dot-product classifier, logits upsampled bilinearly to the input size and argmax (``evaluate``).
  :func:`cluster_images` does that (``upsample="nearest"`` upsamples the ids instead).

Differences from the original
-----------------------------
* Backbone: the MSG WideRes38 (``MSG/backbones/wide_res38.py``, final output, stride 8) from scratch
  (no ImageNet weights reachable here) + a 1x1 conv to ``dim`` features; the original is a ResNet-18
  Panoptic-FPN (stride 4, 128 features), ImageNet-pretrained in its reported runs (``--pretrain``).
* Views: the original's view 1 starts from the image at ``res2`` (640) and view 2 at ``res1`` (320),
  both centre-cropped; here both views start from the same random square crop (``crop``) of the
  (downscaled) image, drawn per image per epoch (GlaS images are larger than the crop; the original's
  fixed centre crop would never see their borders). View 1 is jittered in training too: the original's
  training branch jitters ``image1`` and then discards it (``transform_tensor(image)``), so its view 1
  is jittered only while clustering — a bug not reproduced.
* Hue jitter: a rotation of the chroma plane in YIQ space (no torchvision here), not HSV.
* K-means as above (full-batch, torch); ``K`` default 5 (the original 27 for COCO); batch 8 (128).
* Plain PyTorch trainer rather than mmengine's runner: an epoch is cluster-the-whole-set, label, then
  train with fixed labels and fixed per-image transforms, which needs a custom loop in mmengine and
  shares nothing with MSG's iteration-based segmentation schedule.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.precision import bf16_supported

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BALANCE_MODES = ("original", "inverse", "none")


# --------------------------------------------------------------------------------------------- model
class PiCIENet(nn.Module):
    """WideRes38 (MSG's, registered in mmseg's ``MODELS``; from scratch) + a 1x1 conv head.

    ``(B, 3, H, W)`` normalised RGB -> ``(B, dim, ceil(H/8), ceil(W/8))`` raw (unnormalised) features;
    the trainer L2-normalises them after the geometric transform, as the original.
    """

    def __init__(self, dim: int = 128, width_mult: float = 0.25) -> None:
        super().__init__()
        import MSG  # noqa: F401  (first: the mmcv.ops stand-in, then registers WideRes38)

        # isort: split
        from mmseg.registry import MODELS

        self.backbone = MODELS.build(dict(type="WideRes38", width_mult=width_mult, out_indices=(3,),
                                          init_cfg=None))  # PyTorch's default init, from scratch
        self.head = nn.Conv2d(self.backbone.channels[3], dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[0])


# --------------------------------------------------------------------------------------- clustering
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


def picie_loss(feat1: torch.Tensor, feat2: torch.Tensor, centroids1: torch.Tensor, centroids2: torch.Tensor,
               labels1: torch.Tensor, labels2: torch.Tensor, weight1: torch.Tensor | None = None,
               weight2: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The PiCIE loss on one batch.

    Args:
        feat1, feat2: ``(B, D, h, w)`` normalised features of view 1 / view 2, both in the frame of the
            geometric transform (view 1: transformed image; view 2: transformed feature map).
        centroids1, centroids2: ``(k, D)`` (frozen) centroids of view 1 / view 2.
        labels1, labels2: ``(B, h, w)`` int64 labels of view 1 (from ``centroids1``) / view 2.
        weight1, weight2: ``(k,)`` CE class weights coupled with ``labels1`` / ``labels2`` (or None).

    Returns:
        ``{"loss11", "loss22", "loss12", "loss21", "within", "across", "total"}``; ``lossAB`` is the CE of
        view A's features against view B's centroids and labels; ``total = (within + across) / 2``.
    """
    def ce(feat: torch.Tensor, cent: torch.Tensor, lab: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        return F.cross_entropy(cluster_logits(feat, cent), lab, weight=w)

    out = {
        "loss11": ce(feat1, centroids1, labels1, weight1),
        "loss22": ce(feat2, centroids2, labels2, weight2),
        "loss12": ce(feat1, centroids2, labels2, weight2),
        "loss21": ce(feat2, centroids1, labels1, weight1),
    }
    out["within"] = (out["loss11"] + out["loss22"]) / 2
    out["across"] = (out["loss12"] + out["loss21"]) / 2
    out["total"] = (out["within"] + out["across"]) / 2
    return out


# ------------------------------------------------------------------------------------ transforms
@dataclass(frozen=True)
class GeomParams:
    """A crop (relative: side ``int(scale * size)`` at ``round((size - side) * u)``) then flips."""

    scale: float = 1.0
    u_top: float = 0.0
    u_left: float = 0.0
    hflip: bool = False
    vflip: bool = False


def random_geometric(rng: np.random.Generator | int, min_scale: float = 0.5, hflip: bool = True,
                     vflip: bool = False) -> GeomParams:
    """Draw a :class:`GeomParams` (``scale ~ U(min_scale, 1)``, flips with p = 0.5 where enabled)."""
    rng = np.random.default_rng(rng)
    scale, u_top, u_left, ph, pv = rng.uniform(size=5)
    return GeomParams(float(min_scale + (1 - min_scale) * scale), float(u_top), float(u_left),
                      bool(hflip and ph < 0.5), bool(vflip and pv < 0.5))


def _crop_box(size: int, scale: float, u: float) -> tuple[int, int]:
    side = max(1, int(scale * size))
    return round((size - side) * u), side


def apply_geometric(x: torch.Tensor, params: GeomParams, out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Crop + flip ``(B, C, H, W)`` (an image or a feature map, each in its own pixel grid).

    The crop is resized (bilinear, ``align_corners=False``) to ``out_size`` (default ``(H, W)``: the
    original resizes back to the input resolution); ``out_size=(0, 0)`` keeps the crop's own size.
    """
    h, w = x.shape[-2:]
    top, sh = _crop_box(h, params.scale, params.u_top)
    left, sw = _crop_box(w, params.scale, params.u_left)
    y = x[..., top:top + sh, left:left + sw]
    size = (h, w) if out_size is None else out_size
    if size != (0, 0) and tuple(y.shape[-2:]) != tuple(size):
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
    if params.hflip:
        y = y.flip(-1)
    if params.vflip:
        y = y.flip(-2)
    return y


@dataclass(frozen=True)
class JitterParams:
    """Photometric jitter of one view (factors of 1 / shift 0 / False: the step is off)."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    gray: bool = False
    blur_sigma: float = 0.0


def random_jitter(rng: np.random.Generator | int) -> JitterParams:
    """The original's invariance transforms: brightness/contrast/saturation ``U(0.7, 1.3)``, hue ``U(-0.1, 0.1)``,
    each applied with p = 0.8; grayscale p = 0.2; Gaussian blur ``sigma ~ U(0.1, 2)`` with p = 0.5."""
    rng = np.random.default_rng(rng)
    p = rng.uniform(size=6)
    v = rng.uniform(size=5)
    return JitterParams(
        brightness=float(0.7 + 0.6 * v[0]) if p[0] < 0.8 else 1.0,
        contrast=float(0.7 + 0.6 * v[1]) if p[1] < 0.8 else 1.0,
        saturation=float(0.7 + 0.6 * v[2]) if p[2] < 0.8 else 1.0,
        hue=float(-0.1 + 0.2 * v[3]) if p[3] < 0.8 else 0.0,
        gray=bool(p[4] < 0.2),
        blur_sigma=float(0.1 + 1.9 * v[4]) if p[5] < 0.5 else 0.0,
    )


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def apply_jitter(x: torch.Tensor, p: JitterParams) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> jittered, clamped to [0, 1]."""
    x = (x * p.brightness).clamp(0, 1)
    x = (_gray(x).mean((2, 3), keepdim=True) * (1 - p.contrast) + x * p.contrast).clamp(0, 1)
    x = (_gray(x) * (1 - p.saturation) + x * p.saturation).clamp(0, 1)
    if p.hue:
        rgb2yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        a = 2 * math.pi * p.hue
        rot = x.new_tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
        m = torch.linalg.inv(rgb2yiq) @ rot @ rgb2yiq
        x = torch.einsum("ij,bjhw->bihw", m, x).clamp(0, 1)
    if p.gray:
        x = _gray(x).expand_as(x).contiguous()
    if p.blur_sigma > 0:
        r = max(1, math.ceil(2 * p.blur_sigma))
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        g = torch.exp(-t ** 2 / (2 * p.blur_sigma ** 2))
        g = g / g.sum()
        c = x.shape[1]
        x = F.pad(x, (r, r, r, r), mode="reflect") if min(x.shape[-2:]) > r else F.pad(x, (r, r, r, r), "replicate")
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
        x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)
    return x


def normalize_image(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> ImageNet mean/std normalised (the original's ``TensorTransform``)."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def rgb_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 BGR -> ``(1, 3, H, W)`` float32 RGB in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image_bgr[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32)
                            / 255.0)


# --------------------------------------------------------------------------------------- training
@dataclass
class PiCIEConfig:
    k: int = 5
    dim: int = 128
    epochs: int = 10
    width_mult: float = 0.25
    crop: int = 256
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    kmeans_iters: int = 20
    kmeans_max_points: int = 200_000
    min_scale: float = 0.5
    hflip: bool = True
    vflip: bool = False
    balance: str = "original"
    device: str = "cpu"


@dataclass
class _Sample:
    crop: torch.Tensor  # (1, 3, c, c) RGB [0, 1]
    geom: GeomParams
    jit1: JitterParams
    jit2: JitterParams


def _epoch_samples(images: Sequence[torch.Tensor], crop: int, cfg: PiCIEConfig, rng: np.random.Generator
                   ) -> list[_Sample]:
    out = []
    for img in images:
        h, w = img.shape[-2:]
        top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        out.append(_Sample(img[..., top:top + crop, left:left + crop],
                           random_geometric(rng, cfg.min_scale, cfg.hflip, cfg.vflip),
                           random_jitter(rng), random_jitter(rng)))
    return out


def _view_features(model: nn.Module, batch: list[_Sample], view: int, device: torch.device) -> torch.Tensor:
    """Normalised ``(B, D, h, w)`` features of view 1 (g on the image) or view 2 (g on the feature map)."""
    # bf16 autocast where native (as MSG's training): the network in bf16, features and losses in fp32
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16_supported(device))
    if view == 1:
        x = torch.cat([apply_geometric(apply_jitter(s.crop, s.jit1), s.geom) for s in batch])
        with autocast:
            f = model(normalize_image(x).to(device)).float()
    else:
        x = torch.cat([apply_jitter(s.crop, s.jit2) for s in batch])
        with autocast:
            f = model(normalize_image(x).to(device)).float()
        f = torch.cat([apply_geometric(f[i:i + 1], s.geom) for i, s in enumerate(batch)])
    return F.normalize(f, dim=1)


def train_picie(images: Sequence[np.ndarray], cfg: PiCIEConfig,
                log: Callable[[str], None] | None = None) -> tuple[PiCIENet, torch.Tensor]:
    """Train PiCIE on a set of images.

    Args:
        images: ``(H, W, 3)`` uint8 BGR arrays (any sizes; each at least 8 x 8).
        cfg: hyper-parameters (:class:`PiCIEConfig`).
        log: called with one line per epoch (time, K-means and loss values).

    Returns:
        ``(model, centroids)``: the trained network (eval mode) and ``(k, dim)`` centroids from a fresh
        K-means on the features of the un-augmented images (the original's ``--repeats 1``).
    """
    if cfg.balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {BALANCE_MODES}, got {cfg.balance!r}")
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tensors = [rgb_tensor(im) for im in images]
    crop = min(cfg.crop, *(min(t.shape[-2:]) for t in tensors))
    crop = max(8, crop - crop % 8)
    model = PiCIENet(cfg.dim, cfg.width_mult).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = len(tensors)
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        samples = _epoch_samples(tensors, crop, cfg, rng)
        model.eval()
        cents, labels, weights = [], [], []
        with torch.no_grad():
            for view in (1, 2):
                feats = torch.cat([_view_features(model, samples[i:i + cfg.batch], view, device)
                                   for i in range(0, n, cfg.batch)])
                flat = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1])
                c = kmeans(flat, cfg.k, cfg.kmeans_iters, seed=cfg.seed * 1000 + epoch * 2 + view,
                           max_points=cfg.kmeans_max_points)
                lab = cluster_logits(feats, c, "euclidean").argmax(1)
                cents.append(c)
                labels.append(lab)
                weights.append(cluster_weights(torch.bincount(lab.flatten(), minlength=cfg.k), cfg.balance))
        model.train()
        order = rng.permutation(n)
        totals: dict[str, float] = {}
        steps = 0
        for i in range(0, n, cfg.batch):
            idx = order[i:i + cfg.batch].tolist()
            if len(idx) < 2 and n >= 2:  # a BatchNorm batch of one image is allowed only for a set of one
                continue
            batch = [samples[j] for j in idx]
            f1 = _view_features(model, batch, 1, device)
            f2 = _view_features(model, batch, 2, device)
            losses = picie_loss(f1, f2, cents[0], cents[1], labels[0][idx], labels[1][idx], weights[0], weights[1])
            opt.zero_grad()
            losses["total"].backward()
            opt.step()
            for key, v in losses.items():
                totals[key] = totals.get(key, 0.0) + v.item()
            steps += 1
        if log:
            mean = {k: v / max(steps, 1) for k, v in totals.items()}
            log(f"epoch {epoch + 1}/{cfg.epochs}: {time.perf_counter() - t0:.2f} s, {steps} steps, "
                f"loss {mean.get('total', float('nan')):.4f} (within {mean.get('within', float('nan')):.4f}, "
                f"across {mean.get('across', float('nan')):.4f})")
    model.eval()
    with torch.no_grad():
        feats = [whole_image_features(model, t.to(device)) for t in tensors]
        flat = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]) for f in feats])
        centroids = kmeans(flat, cfg.k, cfg.kmeans_iters, seed=cfg.seed * 1000 + 999,
                           max_points=cfg.kmeans_max_points)
    return model, centroids


# Reflect padding around a whole image at inference, in input pixels (a multiple of the stride 8). The
# network answers to the zero padding of its own edges: without it the last 4 feature rows and columns
# (32 input px, 64 px of a GlaS image at half resolution) formed a cluster of their own, a straight band
# along the bottom and right edges that moved with the image when it was flipped.
EDGE_PAD = 64


def whole_image_features(model: nn.Module, image: torch.Tensor, pad: int = EDGE_PAD) -> torch.Tensor:
    """L2-normalised ``(1, D, ceil(H/8), ceil(W/8))`` features of one ``(1, 3, H, W)`` RGB [0, 1] image,
    computed on the image reflect-padded by ``pad`` px (clamped to what the image allows) and cropped back."""
    h, w = image.shape[-2:]
    pad = min(pad, (min(h, w) - 1) // 8 * 8)
    x = normalize_image(image)
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    f = model(x)
    if pad > 0:
        c = pad // 8
        f = f[..., c:c + math.ceil(h / 8), c:c + math.ceil(w / 8)]
    return F.normalize(f, dim=1)


@torch.no_grad()
def cluster_images(model: nn.Module, images: Sequence[np.ndarray], centroids: torch.Tensor,
                   sizes: Sequence[tuple[int, int]] | None = None, upsample: str = "bilinear") -> list[np.ndarray]:
    """Global cluster ids per image.

    Args:
        model: a trained :class:`PiCIENet` (put in eval mode here).
        images: ``(H, W, 3)`` uint8 BGR arrays.
        centroids: ``(k, D)``.
        sizes: output ``(H, W)`` per image (default: the input size), e.g. the size before downscaling.
        upsample: ``"bilinear"`` logits then argmax (the original's ``evaluate``) or ``"nearest"`` on the ids.

    Returns:
        ``(H, W)`` int64 arrays of ids in ``0..k-1`` (dot-product classifier, as the original).
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i, im in enumerate(images):
        size = tuple(sizes[i]) if sizes is not None else im.shape[:2]
        f = whole_image_features(model, rgb_tensor(im).to(device))
        logits = cluster_logits(f, centroids.to(device))
        if upsample == "bilinear":
            ids = F.interpolate(logits, size=size, mode="bilinear", align_corners=False).argmax(1)
        elif upsample == "nearest":
            ids = F.interpolate(logits.argmax(1, keepdim=True).float(), size=size, mode="nearest")[:, 0].long()
        else:
            raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {upsample!r}")
        out.append(ids[0].cpu().numpy())
    return out


# ------------------------------------------------------------------------------------------ oracle
