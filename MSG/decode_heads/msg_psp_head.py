"""MSGPSPHead: mmseg's PSPHead plus a pixel-embedding branch and the MSG losses.

Prediction is unchanged from PSPHead (``forward`` returns the 2-class logits), so mmseg's
inference, slide testing and metrics work as for any decode head. Training goes through
:meth:`MSGPSPHead.loss_msg`, called by ``MSSGEncoderDecoder``:

    feats      = bottleneck(concat(x, PPM(x)))                      (B, channels, h, w)
    logits     = conv_seg(dropout(feats))                           (B, 2, h, w)
    embeddings = normalize(conv1x1(ReLU(BN(conv1x1(feats)))))       (B, embed_dim, h, w)

Losses (``P`` the 0/1/2 proposal, resized by nearest to h x w for the embedding terms):

    decode.loss_ce         L_O = CE(logits, R)  with R the refined proposal once MSG for Omission
                           is active (``iteration >= omission.start_iter``), else CE(logits, P > 0);
                           without MSG for Variation (an ablation), R groups by the normalised
                           bottleneck features, since the embedding branch then has no loss
    decode.loss_variation  lambda_V * L_V       (MSG for Variation)

``interior_weight`` (opt-in, default 1 as in the paper) weights ``L_O`` at the proposal's interior
pixels (P = 2), the lumen SPM adds by hole filling.

and, for logging only, ``decode.relabel_frac`` (share of the proposal's background relabelled
gland) and ``decode.cos_gap`` (mean cos to the anchor over gland pixels minus over background).
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmengine.structures import PixelData
from mmseg.models.decode_heads.psp_head import PSPHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import nn
from torch.nn import functional as F

from common.proposals import BACKGROUND, BORDER, INTERIOR
from MSG.decode_heads.msg_omission import binary_target
from MSG.losses.msg_variation import border_anchor, masked_mean


def loss_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(B, K, h, w)`` logits as the loss resizes them: fp32, NCHW-contiguous.

    The loss upsamples the stride-8 logits to the label size; PyTorch's CPU bilinear kernels for a
    bf16 channels-last map of K = 2 channels run about 4x slower than for the fp32 NCHW copy (the CE
    is computed in fp32 under autocast either way). A no-op for fp32 NCHW logits.
    """
    return logits.float().contiguous()


def _windows_1d(n: int, s: int, device: torch.device) -> torch.Tensor:
    """``(s, n)`` bool: adaptive pooling's window ``i`` covers ``floor(i n / s) <= k < ceil((i + 1) n / s)``."""
    i, k = torch.arange(s, device=device)[:, None], torch.arange(n, device=device)[None]
    return (k >= (i * n) // s) & (k < -((-(i + 1) * n) // s))


def pyramid_pool(x: torch.Tensor, scales: tuple[int, ...] | list[int]) -> list[torch.Tensor]:
    """``[F.adaptive_avg_pool2d(x, s) for s in scales]`` as one matrix product over the pixels.

    ``x``: ``(B, C, H, W)``; returns ``(B, C, s, s)`` per scale, channels-last when ``x`` is.
    The windows are PyTorch's (rows ``floor(i H / s)`` to ``ceil((i + 1) H / s)``); the product sums
    with 0/1 weights (exact in bf16, accumulated in fp32 by the matmul) and the sums are divided by the
    window areas in fp32, so the result is the kernel's to rounding. Its backward is one product too.
    """
    b, c, h, w = x.shape
    rows, areas = [], []
    for s in scales:
        window = _windows_1d(h, s, x.device)[:, None, :, None] & _windows_1d(w, s, x.device)[None, :, None, :]
        rows.append(window.reshape(s * s, h * w))  # (s, s, H, W) -> (s^2, H*W)
        areas.append(window.sum((2, 3)).reshape(s * s))
    windows = torch.cat(rows).to(x.dtype)  # (R, H*W), R = sum of s^2
    acc_dtype = torch.promote_types(x.dtype, torch.float32)  # bf16 sums are divided in fp32
    inv_area = 1.0 / torch.cat(areas).to(acc_dtype)
    # the product reads x where it lies: pixels-by-channels for channels-last, channels-by-pixels else
    if _is_channels_last(x):
        memory_format = torch.channels_last
        sums = torch.matmul(windows, x.permute(0, 2, 3, 1).reshape(b, h * w, c))  # (B, R, C)
    else:
        memory_format = torch.contiguous_format
        sums = torch.matmul(x.reshape(b, c, h * w), windows.t()).transpose(1, 2)  # (B, R, C)
    pooled = (sums.to(acc_dtype) * inv_area[:, None]).to(sums.dtype)
    return [p.reshape(b, s, s, c).permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
            for p, s in zip(pooled.split([s * s for s in scales], dim=1), scales, strict=True)]


def _is_channels_last(x: torch.Tensor) -> bool:
    """A 4-d tensor laid out channels-last (and not also NCHW-contiguous, as 1x1 maps are)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


@MODELS.register_module()
class MSGPSPHead(PSPHead):
    """PSPHead with an L2-normalised embedding branch and MSG for Variation / Omission.

    Args:
        embed_dim: embedding channels D.
        variation: config of ``MSGVariationLoss`` (None disables MSG for Variation).
        omission: config of ``MSGOmission`` (None disables MSG for Omission: CE on P throughout).
        interior_weight: weight of the CE at the proposal's interior pixels (1.0, the paper: every pixel
            alike). Opt-in, not in the paper: the interior is the pale lumen SPM reaches by hole filling,
            a few percent of the pixels, which a network trained on the proposals tends to leave out.
        **kwargs: PSPHead / BaseDecodeHead arguments (``num_classes`` must be 2).
    """

    def __init__(self, embed_dim: int = 128, variation: dict | None = None, omission: dict | None = None,
                 interior_weight: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.num_classes != 2:
            raise ValueError(f"MSGPSPHead predicts background vs gland: num_classes must be 2, got {self.num_classes}")
        if not interior_weight > 0:
            raise ValueError(f"interior_weight must be > 0, got {interior_weight}")
        self.interior_weight = float(interior_weight)
        self.embed_head = nn.Sequential(
            ConvModule(self.channels, self.channels, 1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                       act_cfg=self.act_cfg),
            nn.Conv2d(self.channels, embed_dim, 1),
        )
        self.variation = MODELS.build(variation) if variation else None
        self.omission = MODELS.build(omission) if omission else None

    def _forward_feature(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """PSPHead's ``bottleneck(concat(x, PPM(x)))``, ``(B, channels, h, w)``, with the concat kept in x's
        memory format.

        The PPM's four adaptive poolings are computed as one matrix product (:func:`pyramid_pool`,
        the same values): in a channels-last bf16 model PyTorch's CPU kernels up-cast the whole
        feature map for the 1x1 pooling and clone it in the backward of the others, and autograd would
        sum four branch gradients into x's. The branches' convolutions (``psp_modules[i][1]``)
        and parameter names stay mmseg's. The 1x1 branch leaves its BN in NCHW (a 1x1 map has no
        channels-last strides to keep), and ``torch.cat`` of mixed formats falls back to NCHW, hence the
        explicit format before the concat.
        """
        x = self._transform_inputs(inputs)
        memory_format = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
        psp_outs = [x]
        for branch, pooled in zip(self.psp_modules, pyramid_pool(x, self.pool_scales), strict=True):
            out = resize(branch[1](pooled), size=x.shape[2:], mode="bilinear", align_corners=self.align_corners)
            psp_outs.append(out.contiguous(memory_format=memory_format))
        return self.bottleneck(torch.cat(psp_outs, dim=1))

    def forward_with_embedding(self, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(logits (B, num_classes, h, w), embeddings (B, embed_dim, h, w), unit norm)``."""
        logits, embeddings, _ = self._forward_all(inputs)
        return logits, embeddings

    def _forward_all(self, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, embeddings, bottleneck features (B, channels, h, w))``."""
        feats = self._forward_feature(inputs)
        return self.cls_seg(feats), F.normalize(self.embed_head(feats), dim=1), feats

    def loss_msg(
        self, inputs: list[torch.Tensor], batch_data_samples: list[SegDataSample], iteration: int
    ) -> tuple[dict[str, torch.Tensor], list[SegDataSample]]:
        """MSG training losses; also returns data samples carrying the target used (for auxiliary heads)."""
        logits, embeddings, feats = self._forward_all(inputs)
        proposal_full = self._stack_batch_gt(batch_data_samples)[:, 0].long()  # (B, H, W)
        proposal_small = F.interpolate(proposal_full[:, None].float(), size=embeddings.shape[-2:],
                                       mode="nearest")[:, 0].long()
        stats: dict[str, torch.Tensor] = {}
        if self.omission is not None and self.omission.active(iteration):
            predicted = None
            if self.omission.fill_holes is not None:
                with torch.no_grad():
                    up = F.interpolate(logits.detach().float(), size=proposal_full.shape[-2:], mode="bilinear",
                                       align_corners=self.align_corners)
                    predicted = up.argmax(1) == 1
            # Without MSG for Variation the embedding branch has no loss of its own (a random projection);
            # Omission then groups pixels by the decode features, which the CE trains.
            grouping = embeddings if self.variation is not None else F.normalize(feats.detach().float(), dim=1)
            target, stats = self.omission(grouping, proposal_small, proposal_full, predicted)
        else:
            target = binary_target(proposal_full)
        target_samples = [
            SegDataSample(gt_sem_seg=PixelData(data=t[None]), metainfo=s.metainfo)
            for t, s in zip(target, batch_data_samples, strict=True)
        ]
        weight = None
        if self.interior_weight != 1.0:
            weight = torch.where(proposal_full == INTERIOR, self.interior_weight, 1.0)
        losses = self.loss_by_feat(loss_logits(logits), target_samples, weight)
        if self.variation is not None:
            losses[self.variation.loss_name] = self.variation(embeddings, proposal_small)
        losses.update({k: v.detach() for k, v in stats.items()})
        losses["cos_gap"] = self._cos_gap(embeddings, proposal_small)
        return losses, target_samples

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples: list[SegDataSample],
                     seg_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """BaseDecodeHead's loss with an optional per-pixel weight ``seg_weight`` ``(B, H, W)`` at the
        label resolution (multiplied with a pixel sampler's weight if the head has one)."""
        seg_label = self._stack_batch_gt(batch_data_samples)
        seg_logits = resize(seg_logits, size=seg_label.shape[2:], mode="bilinear", align_corners=self.align_corners)
        if self.sampler is not None:
            sampled = self.sampler.sample(seg_logits, seg_label)
            seg_weight = sampled if seg_weight is None else sampled * seg_weight
        seg_label = seg_label.squeeze(1)
        loss: dict[str, torch.Tensor] = {}
        losses_decode = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode]
        for loss_decode in losses_decode:
            value = loss_decode(seg_logits, seg_label, weight=seg_weight, ignore_index=self.ignore_index)
            loss[loss_decode.loss_name] = loss.get(loss_decode.loss_name, 0) + value
        loss["acc_seg"] = accuracy(seg_logits, seg_label, ignore_index=self.ignore_index)
        return loss

    @staticmethod
    def _cos_gap(embeddings: torch.Tensor, proposal: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            anchors, valid = border_anchor(embeddings, proposal)
            if not valid.any():
                return embeddings.new_zeros(())
            cos = torch.einsum("bdhw,bd->bhw", embeddings.detach().float(), anchors)
            gland = (proposal == BORDER) | (proposal == INTERIOR)
            gap = masked_mean(cos, gland) - masked_mean(cos, proposal == BACKGROUND)
            return gap[valid].mean()
