"""The PiCIE network: MSG's WideRes38 backbone and a 1x1 conv feature head."""
from __future__ import annotations

import torch
from torch import nn


class PiCIENet(nn.Module):
    """WideRes38 (MSG's, registered in mmseg's ``MODELS``) + a 1x1 conv head.

    The backbone starts from scratch (PyTorch's default init), or from ``backbone_checkpoint``: a
    ``backbone.pth`` of ``tools/pretrain.py`` (the project's self-supervised start, in place of the
    original's ImageNet weights) of the same ``width_mult``.

    ``(B, 3, H, W)`` normalised RGB -> ``(B, dim, ceil(H/8), ceil(W/8))`` raw (unnormalised) features;
    the trainer L2-normalises them after the geometric transform, as the original.
    """

    def __init__(self, dim: int = 128, width_mult: float = 0.25, backbone_checkpoint: str | None = None) -> None:
        super().__init__()
        import MSG  # noqa: F401  (first: the mmcv.ops stand-in, then registers WideRes38)

        # isort: split
        from mmseg.registry import MODELS

        init_cfg = None if backbone_checkpoint is None else dict(type="Pretrained", checkpoint=backbone_checkpoint)
        self.backbone = MODELS.build(dict(type="WideRes38", width_mult=width_mult, out_indices=(3,),
                                          init_cfg=init_cfg))
        if backbone_checkpoint is not None:
            self.backbone.init_weights()
        self.head = nn.Conv2d(self.backbone.channels[3], dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[0])
