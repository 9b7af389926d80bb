"""Load a trained segmentor and run it on images in memory (the API behind ``tools/predict.py``,
the benches and the whole-slide tool, like mmseg's ``apis``).

A checkpoint written by ``tools/train.py`` carries its config in ``meta["cfg"]`` (mmengine saves it),
so ``load_model(None, CKPT)`` needs nothing else; ``load_model(CONFIG, CKPT)`` uses the given config.
Weights are checked before use: a checkpoint whose tensors do not fit the model (missing, unexpected
or differently shaped) or hold NaN/inf (a diverged run) is refused with one ``InputError`` line,
never run with random or broken weights.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config

from common.io import InputError
from MSG.apis.config import load_config
from MSG.compat.safe_globals import check_checkpoint
from MSG.datasets.tta import config_tta_pipeline, without_loading

# Published model files list their sha256 in this file beside them (tools/publish_model.py writes it).
SHA256_FILE = "SHA256SUMS"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_published_sha256(path: str | os.PathLike) -> None:
    """If a ``SHA256SUMS`` beside ``path`` lists it, the file must have that sha256 (a shipped model that
    was damaged, cut short by a download or replaced is refused rather than run)."""
    path = Path(path)
    sums = path.parent / SHA256_FILE
    if not sums.is_file():
        return
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            if file_sha256(path) != parts[0].lower():
                raise InputError(path, f"its sha256 differs from the one in {sums} (damaged or replaced file); "
                                       "restore it (git checkout) or publish it again with tools/publish_model.py")
            return


def config_from_checkpoint(ckpt: dict, path: str | os.PathLike) -> Config:
    text = (ckpt.get("meta") or {}).get("cfg")
    if not isinstance(text, str) or not text.strip():
        raise InputError(path, "holds no config (meta['cfg']); pass the config too: CONFIG CHECKPOINT")
    try:
        return Config.fromstring(text, ".py")
    except Exception as err:
        raise InputError(path, f"its config (meta['cfg']) does not parse ({err.__class__.__name__})") from None


def check_weights_fit(model: torch.nn.Module, state: dict, path: str | os.PathLike) -> None:
    """Raise ``InputError`` unless ``state`` has every tensor of ``model`` with the same shape, nothing
    else, and only finite values."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the model's {len(expected)} tensors missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise InputError(path, f"weights do not fit the model: {'; '.join(parts)}")
    wrong = [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if wrong:
        raise InputError(path, f"weights do not fit the model: {len(wrong)} tensors differ in shape (e.g. {wrong[0]}: "
                               f"{tuple(state[wrong[0]].shape)} vs {tuple(expected[wrong[0]])})")
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise InputError(path, f"{len(broken)} tensors hold NaN or inf (e.g. {broken[0]}): the training run "
                               "diverged; use an earlier checkpoint or retrain with a lower learning rate")


def load_model(config: str | os.PathLike | None, checkpoint: str | os.PathLike, device: str = "cpu",
               cfg_options: dict | None = None) -> torch.nn.Module:
    """The segmentor of ``config`` (or of the checkpoint's own config when None) with checked weights,
    in eval mode on ``device``; ``model.cfg`` is the config used."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import MSG  # noqa: F401  (registers the MSG parts)

    register_all_modules(init_default_scope=False)
    if os.path.isfile(checkpoint):
        check_published_sha256(checkpoint)
    ckpt = check_checkpoint(checkpoint)
    if config is not None:
        cfg = load_config(config, cfg_options)
    else:
        cfg = config_from_checkpoint(ckpt, checkpoint)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get("default_scope", "mmseg"))  # mmseg's names (SegDataPreProcessor, ...)
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(checkpoint, "holds no tensor state dict")
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    if cfg.model.get("backbone"):
        cfg.model.backbone.init_cfg = None  # the checkpoint holds the trained backbone
    try:
        model = MODELS.build(cfg.model)
    except Exception as err:
        raise InputError(config or checkpoint, f"cannot build the model ({err.__class__.__name__}: {err})") from None
    check_weights_fit(model, state, checkpoint)
    model.load_state_dict(state, strict=True)
    meta = ckpt.get("meta") or {}
    model.dataset_meta = meta.get("dataset_meta") or dict(classes=("background", "gland"),
                                                          palette=[[0, 0, 0], [0, 255, 0]])
    model.cfg = cfg
    return model.to(device).eval()


def _tta_model(model: torch.nn.Module) -> torch.nn.Module:
    """mmseg's ``SegTTAModel`` that also keeps the averaged softmax as ``seg_probs`` (its own
    ``merge_preds`` keeps only the argmax; the whole-slide tool blends probabilities across tiles)."""
    from mmengine.structures import PixelData
    from mmseg.models.segmentors.seg_tta import SegTTAModel

    class SegTTAProbModel(SegTTAModel):
        def merge_preds(self, data_samples_list):
            predictions = super().merge_preds(data_samples_list)
            for samples, merged in zip(data_samples_list, predictions, strict=True):
                probs = sum(s.seg_logits.data.float().softmax(0) for s in samples) / len(samples)
                merged.set_data({"seg_probs": PixelData(data=probs)})
            return predictions

    return SegTTAProbModel(module=model)


class Segmenter:
    """A loaded model plus the config's test (1x) or test-time-augmentation pipeline, for images in memory.

    ``Segmenter(model)(image_bgr)`` -> ``(H, W)`` bool gland mask; :meth:`probabilities` gives the
    ``(2, H, W)`` softmax (averaged over the TTA passes).
    """

    def __init__(self, model: torch.nn.Module, tta: bool = False, tta_ratios: list[float] | None = None) -> None:
        from mmengine.dataset import Compose

        cfg = model.cfg
        if tta or tta_ratios:
            pipeline = config_tta_pipeline(cfg, tta_ratios)
            self.runner = _tta_model(model)
        else:
            pipeline = cfg.test_pipeline
            self.runner = model
        self.pipeline = Compose(without_loading(pipeline))

    def _results(self, images_bgr: list[np.ndarray], names: list[str]) -> list:
        from mmengine.dataset import pseudo_collate

        batch = []
        for image, name in zip(images_bgr, names, strict=True):
            h, w = image.shape[:2]
            batch.append(self.pipeline(dict(img=image, img_path=name, img_shape=(h, w), ori_shape=(h, w))))
        with torch.no_grad():
            return self.runner.test_step(pseudo_collate(batch))

    def __call__(self, image_bgr: np.ndarray, name: str = "image") -> np.ndarray:
        """Boolean gland mask ``(H, W)`` of one BGR uint8 image ``(H, W, 3)``."""
        return (self._results([image_bgr], [name])[0].pred_sem_seg.data[0] == 1).cpu().numpy()

    def probabilities(self, image_bgr: np.ndarray, name: str = "image") -> np.ndarray:
        """``(2, H, W)`` float32 class probabilities of one BGR uint8 image."""
        return self.probabilities_batch([image_bgr], [name])[0]

    def mask_and_probabilities(self, image_bgr: np.ndarray, name: str = "image") -> tuple[np.ndarray, np.ndarray]:
        """The ``(H, W)`` bool mask of ``__call__`` and the ``(2, H, W)`` probabilities of
        :meth:`probabilities`, from one pass."""
        result = self._results([image_bgr], [name])[0]
        return (result.pred_sem_seg.data[0] == 1).cpu().numpy(), _probabilities(result)

    def probabilities_batch(self, images_bgr: list[np.ndarray], names: list[str] | None = None) -> list[np.ndarray]:
        """``(2, H, W)`` float32 class probabilities of each image, in one forward pass per TTA view
        (the images must share one size, as the tiles of a slide do)."""
        names = names or [f"image_{i}" for i in range(len(images_bgr))]
        return [_probabilities(result) for result in self._results(images_bgr, names)]


def _probabilities(result) -> np.ndarray:
    """``(2, H, W)`` float32 softmax of one ``SegDataSample`` (averaged over TTA views where it has them)."""
    probs = result.seg_probs.data if "seg_probs" in result else result.seg_logits.data.float().softmax(0)
    return probs.float().cpu().numpy()


def is_config_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".py"


def split_model_positionals(items: list[str]) -> tuple[str | None, str, list[str]]:
    """``[CONFIG] CHECKPOINT INPUT...`` (the tools' positional form) -> ``(config or None, checkpoint, inputs)``."""
    config = items[0] if items and is_config_path(items[0]) else None
    rest = items[1:] if config else items
    if len(rest) < 2:
        raise InputError(" ".join(items) or "(nothing)", "expected [CONFIG] CHECKPOINT INPUT [INPUT ...]")
    return config, rest[0], rest[1:]
