"""graph4mm: Graph4MM's hop-diffused / hop-aware graph attention and MM-QFormer.

Pure graph math lives in :mod:`graph4mm.ops` (neighbour-list kernels in :mod:`graph4mm.gather`);
modules wrap it. Multimodal node classification (MAGB) is in :mod:`graph4mm.node_classification`.
The names below are imported on first use, so the configs (:mod:`graph4mm.config`) load without torch.
"""
from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, ['gather', 'ops'], {
    'errors': ['GraphDataError'],
    'attention': ['HopAwareAttention', 'HopDiffusedAttention'],
    'config': ['HopAwareAttentionConfig', 'HopDiffusedAttentionConfig', 'MMQFormerConfig'],
    'qformer': ['MMQFormer', 'MMQFormerOutput'],
})
