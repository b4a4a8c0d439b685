"""graph4mm: Graph4MM's hop-diffused / hop-aware graph attention and MM-QFormer.

Pure graph math lives in :mod:`graph4mm.ops` (neighbour-list kernels in :mod:`graph4mm.gather`);
modules wrap it. Multimodal node classification (MAGB) is in :mod:`graph4mm.node_classification`.
"""
from graph4mm import gather, ops
from graph4mm.attention import (
    HopAwareAttention,
    HopAwareAttentionConfig,
    HopDiffusedAttention,
    HopDiffusedAttentionConfig,
)
from graph4mm.errors import GraphDataError
from graph4mm.qformer import MMQFormer, MMQFormerConfig, MMQFormerOutput

__all__ = [
    "GraphDataError",
    "HopAwareAttention",
    "HopAwareAttentionConfig",
    "HopDiffusedAttention",
    "HopDiffusedAttentionConfig",
    "MMQFormer",
    "MMQFormerConfig",
    "MMQFormerOutput",
    "gather",
    "ops",
]
