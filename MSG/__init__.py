"""MSG: Morphology-aware Semantic Grouping, an mmsegmentation 1.x extension.

Load it from a config with ``custom_imports = dict(imports=['MSG'], allow_failed_imports=False)``.
Importing it first installs the ``mmcv.ops`` stand-in when mmcv's compiled ops are absent (see
``MSG/compat/mmcv_ops.py``), then registers:

* backbone ``WideRes38`` (``MSG/backbones/wide_res38.py``)
* decode head ``MSGPSPHead`` (``MSG/decode_heads/msg_psp_head.py``)
* losses ``MSGVariationLoss``, ``MSGOmission`` (``MSG/losses/``)
* segmentor ``MSSGEncoderDecoder`` (``MSG/segmentors/mssg_encoder_decoder.py``)
* datasets ``GlaSProposalDataset``, ``GlaSDataset`` and transform ``LoadBinaryAnnotations``
* hook ``MSGIterHook``
"""
from MSG.compat import mmcv_ops

mmcv_ops.install()

from MSG import backbones, datasets, decode_heads, engine, losses, segmentors  # noqa: E402

__all__ = ["backbones", "datasets", "decode_heads", "engine", "losses", "segmentors"]
