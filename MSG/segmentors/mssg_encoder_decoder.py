"""MSSGEncoderDecoder: an EncoderDecoder that trains with the MSG losses.

Training: the decode head (``MSGPSPHead``) receives the 0/1/2 proposal maps and the current
iteration (mmengine's message hub carries the runner's iteration, also after ``--resume``; set
``current_iter`` to override it outside a runner), returns its losses and the target it supervised
with (``R`` or ``P > 0``); the auxiliary head is trained on that same target. A non-finite total
loss stops training with ``FloatingPointError`` (a diverged run must not go on to write NaN
checkpoints). ``channels_last=True`` keeps weights and inputs in channels-last memory format
(oneDNN's preferred layout for bf16 convolutions on CPUs; measured in ``bench/msg_step.py``).
Inference is plain EncoderDecoder (2-class logits, whole or slide mode), with one option:
``test_cfg.precision = "bf16"`` runs the network under bf16 autocast where the device runs bf16
natively and faster than fp32 (``common.precision.bf16_supported``; elsewhere fp32). The logits are returned in
fp32 either way, so resizing, flipping back and the softmax averaged over test-time augmentations
are computed in fp32. Slide inference runs ``test_cfg.window_batch`` windows (default 8) through the
network at once instead of one by one: the same windows, the same average, several times faster on
CPUs (one 320x320 window at a time leaves most of oneDNN's parallelism unused).
"""
from __future__ import annotations

import torch
from mmengine.logging import MessageHub
from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor, nn

from common.precision import bf16_supported
from MSG.decode_heads.msg_psp_head import loss_logits

PRECISIONS = ("fp32", "bf16")


@MODELS.register_module()
class MSSGEncoderDecoder(EncoderDecoder):
    """EncoderDecoder whose training step runs MSG for Variation and MSG for Omission."""

    def __init__(self, *args, channels_last: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if not hasattr(self.decode_head, "loss_msg"):
            raise TypeError(f"MSSGEncoderDecoder needs an MSG decode head, got {type(self.decode_head).__name__}")
        precision = (self.test_cfg or {}).get("precision", "fp32")
        if precision not in PRECISIONS:
            raise ValueError(f"test_cfg.precision must be one of {PRECISIONS}, got {precision!r}")
        self._current_iter: int | None = None

    @property
    def current_iter(self) -> int:
        """The training iteration: set explicitly, else the runner's (``MessageHub`` runtime info ``iter``)."""
        if self._current_iter is not None:
            return self._current_iter
        return int(MessageHub.get_current_instance().get_info("iter", 0))

    @current_iter.setter
    def current_iter(self, value: int | None) -> None:
        self._current_iter = value

    def parse_losses(self, losses: dict) -> tuple[Tensor, dict]:
        loss, log_vars = super().parse_losses(losses)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss ({loss.item()}) at iteration {self.current_iter + 1}: training diverged "
                f"(lower the learning rate); the checkpoints written before it are unaffected")
        return loss, log_vars

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(inputs)

    def loss(self, inputs: Tensor, data_samples: list[SegDataSample]) -> dict:
        x = self.extract_feat(inputs)
        loss_decode, target_samples = self.decode_head.loss_msg(x, data_samples, self.current_iter)
        losses = add_prefix(loss_decode, "decode")
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, target_samples))
        return losses

    def _auxiliary_head_forward_train(self, inputs: list[Tensor], data_samples: list[SegDataSample]) -> dict:
        """mmseg's auxiliary losses, with the logits resized for the loss in fp32 NCHW (``loss_logits``)."""
        if isinstance(self.auxiliary_head, nn.ModuleList):
            named = [(f"aux_{i}", head) for i, head in enumerate(self.auxiliary_head)]
        else:
            named = [("aux", self.auxiliary_head)]
        losses = {}
        for prefix, head in named:
            losses.update(add_prefix(head.loss_by_feat(loss_logits(head(inputs)), data_samples), prefix))
        return losses

    def inference(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """``(B, num_classes, H, W)`` fp32 logits; the network runs in bf16 if ``test_cfg.precision`` says so."""
        bf16 = self.test_cfg.get("precision", "fp32") == "bf16" and bf16_supported(inputs.device)
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=bf16):
            seg_logits = super().inference(inputs, batch_img_metas)
        return seg_logits.float()

    def slide_inference(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """mmseg's sliding-window inference (same windows, same overlap average), windows batched.

        Returns ``(B, num_classes, H, W)`` logits averaged over the windows covering each pixel.
        """
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        window_batch = max(1, int(self.test_cfg.get("window_batch", 8)))
        batch_size, _, h_img, w_img = inputs.size()
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        boxes = []
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2, x2 = min(h_idx * h_stride + h_crop, h_img), min(w_idx * w_stride + w_crop, w_img)
                boxes.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
        preds = inputs.new_zeros((batch_size, self.out_channels, h_img, w_img), dtype=torch.float32)
        count = inputs.new_zeros((batch_size, 1, h_img, w_img), dtype=torch.float32)
        for start in range(0, len(boxes), window_batch):
            chunk = boxes[start:start + window_batch]
            # every window has the same size: min(crop, image) in each dimension
            crops = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk], 0)
            metas = [dict(batch_img_metas[0], img_shape=crops.shape[2:])] * crops.shape[0]
            logits = self.encode_decode(crops, metas).float().split(batch_size, 0)
            for (y1, y2, x1, x2), window in zip(chunk, logits, strict=True):
                preds[:, :, y1:y2, x1:x2] += window
                count[:, :, y1:y2, x1:x2] += 1
        return preds / count
