"""One image through SPM, without any file writing: read -> CSNet -> K-means -> proposal."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from SPM.cluster import kmeans_exact, kmeans_fast
from SPM.io import read_bgr
from SPM.select import Proposal, mine_proposal
from SPM.train import CSNetTrainer


@dataclass
class MinedImage:
    name: str
    image: np.ndarray  # (H, W, 3) BGR uint8, as read
    labels: np.ndarray  # (H, W) cluster ids
    proposal: Proposal
    seconds: float
    warnings: list[str] = field(default_factory=list)


def image_to_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 BGR -> ``(1, 3, H, W)`` float32 in [0, 1], as the original's ``/255.``."""
    return torch.from_numpy(image_bgr.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)


def mine_array(
    image_bgr: np.ndarray,
    trainer: CSNetTrainer,
    cluster_num: int = 5,
    seed: int = 0,
    scale: float = 1.0,
    min_border_pixels: int = 10000,
    hole_area: int = 15000,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, Proposal]:
    """Run SPM on one BGR image. Returns ``(labels (H, W), proposal)`` at full resolution.

    ``scale < 1`` mines at reduced resolution: CSNet and K-means run on the resized image,
    the cluster map is upsampled (nearest) and the selection rules run at full resolution so
    their pixel thresholds keep their meaning.
    """
    h, w = image_bgr.shape[:2]
    work = image_bgr
    if scale != 1.0:
        sh, sw = max(3, round(h * scale)), max(3, round(w * scale))
        work = cv2.resize(image_bgr, (sw, sh), interpolation=cv2.INTER_AREA)
    x = image_to_tensor(work)
    emb = trainer.fit(x, seed=seed, on_step=on_step)
    if trainer.exact:
        labels = kmeans_exact(emb.float().cpu().numpy(), cluster_num)
    else:
        labels = kmeans_fast(emb, cluster_num)
    labels = labels.reshape(work.shape[:2])
    if scale != 1.0:
        up = F.interpolate(torch.from_numpy(labels)[None, None].float(), size=(h, w), mode="nearest")
        labels = up[0, 0].long().numpy()
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    proposal = mine_proposal(gray, labels, cluster_num, min_border_pixels, hole_area)
    return labels, proposal


def mine_file(path: str | Path, trainer: CSNetTrainer, **kwargs) -> MinedImage:
    """Read ``path`` and run :func:`mine_array`; raises ``InputError`` for bad files."""
    path = Path(path)
    start = time.perf_counter()
    image, read_warnings = read_bgr(path)
    labels, proposal = mine_array(image, trainer, **kwargs)
    return MinedImage(
        name=path.stem,
        image=image,
        labels=labels,
        proposal=proposal,
        seconds=time.perf_counter() - start,
        warnings=read_warnings + proposal.warnings,
    )
