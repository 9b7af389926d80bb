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
    return torch.from_numpy(np.ascontiguousarray(image_bgr.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0)


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


def _working_image(image_bgr: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image_bgr
    h, w = image_bgr.shape[:2]
    sh, sw = max(3, round(h * scale)), max(3, round(w * scale))
    return cv2.resize(image_bgr, (sw, sh), interpolation=cv2.INTER_AREA)


def _proposal_from_embedding(image_bgr: np.ndarray, work_shape: tuple[int, int], emb: torch.Tensor,
                             trainer: CSNetTrainer, cluster_num: int, min_border_pixels: int,
                             hole_area: int) -> tuple[np.ndarray, Proposal]:
    """K-means on the embedding, back to the image's resolution, then SPM's selection rule."""
    h, w = image_bgr.shape[:2]
    if trainer.exact:
        labels = kmeans_exact(emb.float().cpu().numpy(), cluster_num)
    else:
        labels = kmeans_fast(emb, cluster_num)
    labels = labels.reshape(work_shape)
    used = len(np.unique(labels))
    if work_shape != (h, w):
        up = F.interpolate(torch.from_numpy(labels)[None, None].float(), size=(h, w), mode="nearest")
        labels = up[0, 0].long().numpy()
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    proposal = mine_proposal(gray, labels, cluster_num, min_border_pixels, hole_area)
    if used < cluster_num:  # e.g. a learning rate so high that every pixel got one embedding
        proposal.warnings.append(f"K-means found {used} of {cluster_num} clusters: the embedding collapsed "
                                 "(check --lr); the proposal is not meaningful")
    return labels, proposal


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
    return mine_arrays([image_bgr], trainer, cluster_num, seed, scale, min_border_pixels, hole_area, on_step)[0]


def mine_arrays(
    images_bgr: list[np.ndarray],
    trainer: CSNetTrainer,
    cluster_num: int = 5,
    seed: int = 0,
    scale: float = 1.0,
    min_border_pixels: int = 10000,
    hole_area: int = 15000,
    on_step: Callable[[int, float], None] | None = None,
) -> list[tuple[np.ndarray, Proposal]]:
    """:func:`mine_array` for images of one size, their CSNets trained in one pass
    (:meth:`CSNetTrainer.fit_many`; each image keeps its own network, seeded with ``seed`` as alone)."""
    works = [_working_image(image, scale) for image in images_bgr]
    xs = [image_to_tensor(work) for work in works]
    if len(xs) == 1:
        embeddings = [trainer.fit(xs[0], seed=seed, on_step=on_step)]
    else:
        embeddings = trainer.fit_many(xs, [seed] * len(xs), on_step=on_step)
    return [_proposal_from_embedding(image, work.shape[:2], emb, trainer, cluster_num, min_border_pixels, hole_area)
            for image, work, emb in zip(images_bgr, works, embeddings, strict=True)]


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


class GroupMiner:
    """Mines the files of a batch job one call at a time, training up to ``batch`` images' CSNets in one
    pass (``--batch_images``): asked for a file not mined yet, it mines it together with the next files
    of ``files`` that have the same size and are neither done (``is_done``) nor mined yet, and keeps their
    results for the calls that follow. ``batch=1`` is the plain per-image loop."""

    def __init__(self, files: list[Path], trainer: CSNetTrainer, batch: int, is_done: Callable[[Path], bool],
                 lookahead: int = 64, **kwargs) -> None:
        self.files = [Path(f) for f in files]
        self.position = {f: i for i, f in enumerate(self.files)}
        self.trainer = trainer
        self.batch = batch
        self.is_done = is_done
        self.lookahead = lookahead
        self.kwargs = kwargs
        self._ready: dict[Path, MinedImage] = {}
        # sizes of the files decoded while looking for partners: each is decoded for that once at most
        self._shapes: dict[Path, tuple[int, ...] | None] = {}

    def __call__(self, path: Path, on_step: Callable[[int, float], None] | None = None) -> MinedImage:
        path = Path(path)
        if path in self._ready:
            return self._ready.pop(path)
        if self.batch == 1:
            return mine_file(path, self.trainer, on_step=on_step, **self.kwargs)
        start = time.perf_counter()
        image, read_warnings = read_bgr(path)
        group = [(path, image, read_warnings)]
        start_at = self.position.get(path, len(self.files)) + 1
        for other in self.files[start_at:start_at + self.lookahead]:
            if len(group) == self.batch:
                break
            # files after this one are never mined yet unless a group took them (then they wait in _ready)
            if other in self._ready or self._shapes.get(other, image.shape) != image.shape or self.is_done(other):
                continue
            try:
                other_image, other_warnings = read_bgr(other)
            except InputError:
                self._shapes[other] = None  # reported on its own turn
                continue
            self._shapes[other] = other_image.shape
            if other_image.shape == image.shape:
                group.append((other, other_image, other_warnings))
        scale = self.kwargs.get("scale", 1.0)
        check_fits(path, image.shape[0] * len(group), image.shape[1], scale, self.trainer)
        results = mine_arrays([g[1] for g in group], self.trainer, on_step=on_step, **self.kwargs)
        seconds = (time.perf_counter() - start) / len(group)
        mined = [MinedImage(name=p.stem, image=im, labels=labels, proposal=proposal, seconds=seconds,
                            warnings=warnings + proposal.warnings)
                 for (p, im, warnings), (labels, proposal) in zip(group, results, strict=True)]
        for (p, _, _), result in zip(group[1:], mined[1:], strict=True):
            self._ready[p] = result
        return mined[0]
