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
  (no ImageNet weights reachable here) or, with ``--backbone_checkpoint``, from the project's
  self-supervised ``backbone.pth`` (``tools/pretrain.py``), + a 1x1 conv to ``dim`` features; the
  original is a ResNet-18 Panoptic-FPN (stride 4, 128 features), ImageNet-pretrained in its reported
  runs (``--pretrain``).
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

Layout
------
:mod:`~baselines.picie.net` (:class:`PiCIENet`), :mod:`~baselines.picie.kmeans` (K-means, labels, logits,
cluster weights), :mod:`~baselines.picie.loss` (:func:`picie_loss`), :mod:`~baselines.picie.augment` (the
geometric and photometric transforms, image tensors), :mod:`~baselines.picie.trainer` (the epoch loop and
whole-image clustering). Command line: ``tools/picie.py``.
"""
from baselines.picie.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    GeomParams,
    JitterParams,
    apply_geometric,
    apply_jitter,
    normalize_image,
    random_geometric,
    random_jitter,
    rgb_tensor,
)
from baselines.picie.kmeans import BALANCE_MODES, assign, cluster_logits, cluster_weights, kmeans
from baselines.picie.loss import picie_loss
from baselines.picie.net import PiCIENet
from baselines.picie.trainer import EDGE_PAD, PiCIEConfig, cluster_images, train_picie, whole_image_features

__all__ = ["BALANCE_MODES", "EDGE_PAD", "IMAGENET_MEAN", "IMAGENET_STD", "GeomParams", "JitterParams", "PiCIEConfig",
           "PiCIENet", "apply_geometric", "apply_jitter", "assign", "cluster_images", "cluster_logits",
           "cluster_weights", "kmeans", "normalize_image", "picie_loss", "random_geometric", "random_jitter",
           "rgb_tensor", "train_picie", "whole_image_features"]
