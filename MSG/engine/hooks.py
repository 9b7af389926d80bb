"""Hooks that give MSG what the runner knows."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class MSGIterHook(Hook):
    """Tells ``MSSGEncoderDecoder`` the current iteration before each training step, so that MSG for
    Omission starts at ``start_iter`` also after ``--resume``."""

    priority = "NORMAL"

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, "current_iter"):
            model.current_iter = runner.iter
