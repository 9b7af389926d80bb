"""MSG: Morphology-aware Semantic Grouping, an mmsegmentation 1.x extension.

Importing this package first installs the ``mmcv.ops`` stand-in when mmcv's compiled ops are
absent (see ``MSG/compat/mmcv_ops.py``), so that ``mmseg.models`` imports with mmcv-lite.
"""
from MSG.compat import mmcv_ops

mmcv_ops.install()
