"""WideRes38: the wide ResNet-38 of Wu, Shen & van den Hengel ("Wider or Deeper", 2016), output stride 8.

The variant used for histology segmentation by the MSSG authors' lab (and for weakly supervised
segmentation as "resnet38d"): pre-activation residual blocks, the last two stages dilated
instead of strided.

    conv1a  3 -> 64, 3x3                                      stride 1
    b2      3 blocks  64/128 -> 128                            stride 2    (H/2)
    b3      3 blocks 128/256 -> 256                            stride 2    (H/4)
    b4      6 blocks 256/512 -> 512                            stride 2    (H/8)
    b5      3 blocks 512/512 -> 1024          dilation 2
    b6      bottleneck 1024 -> 512 -> 1024 -> 2048, dilation 4, dropout 0.3
    b7      bottleneck 2048 -> 1024 -> 2048 -> 4096, dilation 4, dropout 0.5
    bn7     BN + ReLU

A block is ``x -> BN -> ReLU -> (conv_branch1 | identity) + conv(..BN-ReLU-conv..)``; its
BN-ReLU'd input is what the ``out_indices`` expose.

Outputs (``out_indices`` selects from these four):

    0: BN-ReLU entering b4   (256 * w ch, H/4 x W/4: b4 is the last strided block)
    1: BN-ReLU entering b5   (512 * w ch, H/8 x W/8)
    2: BN-ReLU entering b6   (1024 * w ch, H/8 x W/8)
    3: final bn7 + ReLU      (4096 * w ch, H/8 x W/8)

with ``w = width_mult`` (1.0 is the published network; smaller values give the CPU-scale variant
with the same layout and parameter names).

Parameter names are those of the published checkpoints of this lineage (``conv1a``, ``b2``,
``b2_1`` ... ``b7``, ``bn7``; ``bn_branch2a``, ``conv_branch2a``, ``bn_branch2b1``,
``conv_branch2b1``, ``bn_branch2b2``, ``conv_branch2b2``, ``conv_branch1``), so ``res38d.pth``
and mmseg-0.x PSPNet-WRes38 checkpoints load as they are.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS
from torch import nn
from torch.nn import functional as F

from common.io import InputError
from MSG.compat.safe_globals import check_checkpoint

WEIGHTS_HINT = (
    "the ImageNet weights of ResNet-38 ('res38d.pth', converted from the MXNet release of Wu et al.) "
    "are not downloadable from here: obtain the file, place it at that path (or set "
    "model.backbone.init_cfg.checkpoint), or train from scratch with init_cfg=None"
)


class ResBlock(nn.Module):
    """Pre-activation basic block: two 3x3 convs, ``in -> mid -> out``.

    Shape: ``(B, in, H, W) -> (B, out, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1,
                 first_dilation: int | None = None, dilation: int = 1, norm_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type="BN")
        first_dilation = dilation if first_dilation is None else first_dilation
        self.same_shape = in_channels == out_channels and stride == 1
        self.bn_branch2a = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv_branch2a = nn.Conv2d(in_channels, mid_channels, 3, stride, padding=first_dilation,
                                       dilation=first_dilation, bias=False)
        self.bn_branch2b1 = build_norm_layer(norm_cfg, mid_channels)[1]
        self.conv_branch2b1 = nn.Conv2d(mid_channels, out_channels, 3, padding=dilation, dilation=dilation,
                                        bias=False)
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(output, BN-ReLU'd input)``."""
        pre = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(pre)
        y = self.conv_branch2a(pre)
        y = self.conv_branch2b1(F.relu(self.bn_branch2b1(y)))
        return shortcut + y, pre


class ResBlockBottleneck(nn.Module):
    """Pre-activation bottleneck block ``in -> out/4 (1x1) -> out/2 (3x3, dilated) -> out (1x1)``
    with channel dropout after each inner BN-ReLU.

    Shape: ``(B, in, H, W) -> (B, out, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 dropout: float = 0.0, norm_cfg: dict | None = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type="BN")
        self.same_shape = in_channels == out_channels and stride == 1
        self.bn_branch2a = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv_branch2a = nn.Conv2d(in_channels, out_channels // 4, 1, stride, bias=False)
        self.bn_branch2b1 = build_norm_layer(norm_cfg, out_channels // 4)[1]
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(out_channels // 4, out_channels // 2, 3, padding=dilation,
                                        dilation=dilation, bias=False)
        self.bn_branch2b2 = build_norm_layer(norm_cfg, out_channels // 2)[1]
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(out_channels // 2, out_channels, 1, bias=False)
        if not self.same_shape:
            self.conv_branch1 = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(output, BN-ReLU'd input)``."""
        pre = F.relu(self.bn_branch2a(x))
        shortcut = x if self.same_shape else self.conv_branch1(pre)
        y = self.conv_branch2a(pre)
        y = self.conv_branch2b1(self.dropout_2b1(F.relu(self.bn_branch2b1(y))))
        y = self.conv_branch2b2(self.dropout_2b2(F.relu(self.bn_branch2b2(y))))
        return shortcut + y, pre


def backbone_state(ckpt: Mapping, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """The backbone's tensors of a loaded checkpoint, named as in :class:`WideRes38`.

    Reads ``ckpt["state_dict"]`` when present (mmengine and ``tools/pretrain.py`` checkpoints) or the
    mapping itself (``res38d.pth``); keeps only the keys under ``prefix`` and strips it (by default
    ``backbone.`` when any key has it, as in a whole segmentor's checkpoint) and strips DDP's ``module.``.
    """
    state = ckpt.get("state_dict", ckpt)
    if not isinstance(state, Mapping):
        return {}
    if prefix is None and any(str(k).startswith("backbone.") for k in state):
        prefix = "backbone."
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if str(k).startswith(prefix)}
    return {str(k).removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def check_backbone_state(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                         path: str | os.PathLike, network: str = "this network") -> None:
    """Refuse a checkpoint's backbone ``state`` that cannot start the network whose state is ``expected``.

    ``network`` names that network in the message, e.g. ``"WideRes38 (width_mult 0.25)"``.

    Raises:
        InputError: ``PATH: holds none of the backbone's weights ...`` when no key matches (loading it
            would silently train from scratch), or ``PATH: KEY is SHAPE, not the SHAPE of this network
            NETWORK`` for the first weight of another shape (a checkpoint of another width).
    """
    shared = [k for k in expected if k in state]
    if not shared:
        seen = ", ".join(sorted(state)[:2]) or "no tensors"
        raise InputError(path, f"holds none of the WideRes38 backbone's weights (its keys: {seen}): pass the "
                               f"backbone.pth of tools/pretrain.py or a WideRes38 / PSPNet-WRes38 checkpoint")
    for key in shared:
        if tuple(state[key].shape) != tuple(expected[key].shape):
            raise InputError(path, f"{key} is {tuple(state[key].shape)}, not the {tuple(expected[key].shape)} of "
                                   f"{network}: a checkpoint of another width")


def check_pretrained_checkpoint(path: str | os.PathLike, prefix: str | None = None, network: str | None = None,
                                **backbone_kwargs) -> None:
    """Refuse, before any work, a ``Pretrained`` checkpoint that cannot start ``WideRes38(**backbone_kwargs)``:
    unreadable, holding none of its weights, or of another width (:func:`check_backbone_state`; ``network``
    names the network in the message, by default ``WideRes38 (width_mult W)``). The backbone is built on the
    meta device: shapes only, so a full-width check allocates nothing."""
    with torch.device("meta"):
        expected = WideRes38(**backbone_kwargs).state_dict()
    network = network or f"WideRes38 (width_mult {backbone_kwargs.get('width_mult', 1.0):g})"
    check_backbone_state(expected, backbone_state(check_checkpoint(path), prefix), path, network)


@MODELS.register_module()
class WideRes38(BaseModule):
    """Wide ResNet-38 backbone, output stride 8 (see module docstring for layout and outputs).

    Args:
        in_channels: image channels.
        width_mult: channel multiplier (1.0 = published network).
        out_indices: which of the four feature maps to return.
        norm_cfg: norm layer config (``SyncBN`` on multi-GPU, ``BN`` otherwise).
        dropout: dropout of b6 and b7 (0.3, 0.5 as published).
        norm_eval: keep BN layers in eval mode while training.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` to load converted ImageNet weights
            (a missing file raises ``FileNotFoundError``, one that fits no weight or has
            another width ``InputError``); None trains from scratch.
    """

    def __init__(self, in_channels: int = 3, width_mult: float = 1.0, out_indices: tuple[int, ...] = (0, 1, 2, 3),
                 norm_cfg: dict | None = None, dropout: tuple[float, float] = (0.3, 0.5), norm_eval: bool = False,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        norm_cfg = norm_cfg or dict(type="BN", requires_grad=True)
        if not all(0 <= i <= 3 for i in out_indices):
            raise ValueError(f"out_indices must be in 0..3, got {out_indices}")
        self.out_indices = tuple(out_indices)
        self.norm_eval = norm_eval
        self.width_mult = width_mult

        def c(n: int) -> int:
            return max(4, round(n * width_mult))

        self.channels = (c(256), c(512), c(1024), c(4096))
        self.conv1a = nn.Conv2d(in_channels, c(64), 3, padding=1, bias=False)
        self.b2 = ResBlock(c(64), c(128), c(128), stride=2, norm_cfg=norm_cfg)
        self.b2_1 = ResBlock(c(128), c(128), c(128), norm_cfg=norm_cfg)
        self.b2_2 = ResBlock(c(128), c(128), c(128), norm_cfg=norm_cfg)
        self.b3 = ResBlock(c(128), c(256), c(256), stride=2, norm_cfg=norm_cfg)
        self.b3_1 = ResBlock(c(256), c(256), c(256), norm_cfg=norm_cfg)
        self.b3_2 = ResBlock(c(256), c(256), c(256), norm_cfg=norm_cfg)
        self.b4 = ResBlock(c(256), c(512), c(512), stride=2, norm_cfg=norm_cfg)
        for i in range(1, 6):
            setattr(self, f"b4_{i}", ResBlock(c(512), c(512), c(512), norm_cfg=norm_cfg))
        self.b5 = ResBlock(c(512), c(512), c(1024), first_dilation=1, dilation=2, norm_cfg=norm_cfg)
        self.b5_1 = ResBlock(c(1024), c(512), c(1024), dilation=2, norm_cfg=norm_cfg)
        self.b5_2 = ResBlock(c(1024), c(512), c(1024), dilation=2, norm_cfg=norm_cfg)
        self.b6 = ResBlockBottleneck(c(1024), c(2048), dilation=4, dropout=dropout[0], norm_cfg=norm_cfg)
        self.b7 = ResBlockBottleneck(c(2048), c(4096), dilation=4, dropout=dropout[1], norm_cfg=norm_cfg)
        self.bn7 = build_norm_layer(norm_cfg, c(4096))[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` -> tuple of the selected maps (H/4 for index 0, H/8 for the others)."""
        x = self.conv1a(x)
        for name in ("b2", "b2_1", "b2_2", "b3", "b3_1", "b3_2"):
            x, _ = getattr(self, name)(x)
        x, feat0 = self.b4(x)
        for i in range(1, 6):
            x, _ = getattr(self, f"b4_{i}")(x)
        x, feat1 = self.b5(x)
        x, _ = self.b5_1(x)
        x, _ = self.b5_2(x)
        x, feat2 = self.b6(x)
        x, _ = self.b7(x)
        feat3 = F.relu(self.bn7(x))
        feats = (feat0, feat1, feat2, feat3)
        return tuple(feats[i] for i in self.out_indices)

    def init_weights(self) -> None:
        """Random init, or the ``Pretrained`` checkpoint of ``init_cfg``.

        Keys the checkpoint lacks keep their random init and are logged (a classifier checkpoint
        such as ``res38d.pth`` has extra keys, some conversions lack a BN buffer); a checkpoint that
        holds none of this network's weights, or one of another width, is refused with
        ``InputError`` instead of silently training from scratch.
        """
        cfg = self.init_cfg
        if not (isinstance(cfg, dict) and cfg.get("type") == "Pretrained"):
            super().init_weights()
            return
        path = cfg["checkpoint"]
        if "://" not in path and not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: WideRes38 pretrained weights not found; {WEIGHTS_HINT}")
        ckpt = CheckpointLoader.load_checkpoint(path, map_location="cpu")
        state = backbone_state(ckpt, cfg.get("prefix"))
        check_backbone_state(self.state_dict(), state, path, f"WideRes38 (width_mult {self.width_mult:g})")
        result = self.load_state_dict(state, strict=False)
        print_log(
            f"WideRes38: loaded {path}; missing keys: {sorted(result.missing_keys) or 'none'}; "
            f"unexpected keys: {sorted(result.unexpected_keys) or 'none'}",
            logger="current",
        )
        self._is_init = True

    def train(self, mode: bool = True) -> WideRes38:
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
