"""MSSGEncoderDecoder: an EncoderDecoder that trains with the MSG losses.

Training: the decode head (``MSGPSPHead``) receives the 0/1/2 proposal maps and the current
iteration (set by ``MSGIterHook`` from the runner, so it survives ``--resume``), returns its losses
and the target it supervised with (``R`` or ``P > 0``); the auxiliary head is trained on that
same target. Inference is plain EncoderDecoder: 2-class logits, whole or slide mode.
"""
from __future__ import annotations

from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor


@MODELS.register_module()
class MSSGEncoderDecoder(EncoderDecoder):
    """EncoderDecoder whose training step runs MSG for Variation and MSG for Omission."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.decode_head, "loss_msg"):
            raise TypeError(f"MSSGEncoderDecoder needs an MSG decode head, got {type(self.decode_head).__name__}")
        self.current_iter = 0

    def loss(self, inputs: Tensor, data_samples: list[SegDataSample]) -> dict:
        x = self.extract_feat(inputs)
        loss_decode, target_samples = self.decode_head.loss_msg(x, data_samples, self.current_iter)
        losses = add_prefix(loss_decode, "decode")
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, target_samples))
        return losses
