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

from common.io import InputError, read_bgr
from SPM.cluster import kmeans_exact, kmeans_fast
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


# Peak memory of one CSNet optimisation per pixel and embedding channel (fp32 activations of the conv
# blocks kept for the backward, their gradients, the K-means input): an upper estimate, used to refuse
# an image that cannot fit instead of failing many gigabytes later.
BYTES_PER_PIXEL_CHANNEL = 48


def available_memory(device: torch.device) -> int | None:
    """Free memory of ``device`` in bytes (None when unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:  # MemAvailable counts reclaimable page cache, unlike the free pages
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(path: str | Path, height: int, width: int, scale: float, trainer: CSNetTrainer) -> None:
    """Raise ``InputError`` when mining an image of this size would need more memory than is free."""
    pixels = max(3, round(height * scale)) * max(3, round(width * scale))
    need = pixels * trainer.cfg.n_channels * BYTES_PER_PIXEL_CHANNEL
    free = available_memory(trainer.device)
    if free is not None and need > free:
        raise InputError(path, f"image is {width}x{height}: mining it at scale {scale:g} needs about "
                               f"{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are free; use a smaller --scale "
                               "or cut the image into tiles")


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
    used = len(np.unique(labels))
    if scale != 1.0:
        up = F.interpolate(torch.from_numpy(labels)[None, None].float(), size=(h, w), mode="nearest")
        labels = up[0, 0].long().numpy()
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    proposal = mine_proposal(gray, labels, cluster_num, min_border_pixels, hole_area)
    if used < cluster_num:  # e.g. a learning rate so high that every pixel got one embedding
        proposal.warnings.append(f"K-means found {used} of {cluster_num} clusters: the embedding collapsed "
                                 "(check --lr); the proposal is not meaningful")
    return labels, proposal


def mine_file(path: str | Path, trainer: CSNetTrainer, **kwargs) -> MinedImage:
    """Read ``path`` and run :func:`mine_array`; raises ``InputError`` for bad files."""
    path = Path(path)
    start = time.perf_counter()
    image, read_warnings = read_bgr(path)
    check_fits(path, image.shape[0], image.shape[1], kwargs.get("scale", 1.0), trainer)
    labels, proposal = mine_array(image, trainer, **kwargs)
    return MinedImage(
        name=path.stem,
        image=image,
        labels=labels,
        proposal=proposal,
        seconds=time.perf_counter() - start,
        warnings=read_warnings + proposal.warnings,
    )
