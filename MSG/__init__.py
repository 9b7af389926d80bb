"""MSG: Morphology-aware Semantic Grouping, an mmsegmentation 1.x extension.

Load it from a config with ``custom_imports = dict(imports=['MSG'], allow_failed_imports=False)``.
Importing it first installs the ``mmcv.ops`` stand-in when mmcv's compiled ops are absent (see
``MSG/compat/mmcv_ops.py``), then registers:

* backbone ``WideRes38`` (``MSG/backbones/wide_res38.py``)
* decode head ``MSGPSPHead`` (``MSG/decode_heads/msg_psp_head.py``)
* loss ``MSGVariationLoss`` (``MSG/losses/``) and the refined-proposal builder ``MSGOmission`` (``MSG/decode_heads/``)
* segmentor ``MSSGEncoderDecoder`` (``MSG/segmentors/mssg_encoder_decoder.py``)
* datasets ``GlaSProposalDataset``, ``GlaSDataset`` and transform ``LoadBinaryAnnotations``
"""
import warnings

# Notices that do not apply here, printed by every tool otherwise: mmcv-lite has no compiled
# MultiScaleDeformableAttention (no MSG part uses it); mmseg suggests one output channel for binary
# segmentation (MSG's Omission and Variation need the 2-class logits) and announces a deprecation.
warnings.filterwarnings("ignore", message=r"Fail to import ``MultiScaleDeformableAttention``")
warnings.filterwarnings("ignore", message=r"For binary segmentation, we suggest using")
warnings.filterwarnings("ignore", message=r"``build_loss`` would be deprecated soon")
# SegTTAModel stores its 2-D argmax in a PixelData, which reshapes it with a warning per image.
warnings.filterwarnings("ignore", message=r"The shape of value will convert from")

from MSG.compat import mmcv_ops  # noqa: E402

mmcv_ops.install()

from MSG import backbones, datasets, decode_heads, engine, losses, segmentors  # noqa: E402

__all__ = ["backbones", "datasets", "decode_heads", "engine", "losses", "segmentors"]
