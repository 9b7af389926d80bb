"""Inference API: load a checked checkpoint (config from its meta or given), segment images in memory."""
from MSG.apis.config import load_config
from MSG.apis.inference import (
    Segmenter,
    check_weights_fit,
    config_from_checkpoint,
    load_model,
    split_model_positionals,
)

__all__ = [
    "Segmenter",
    "check_weights_fit",
    "config_from_checkpoint",
    "load_config",
    "load_model",
    "split_model_positionals",
]
