"""graph4mm: Graph4MM's hop-diffused / hop-aware graph attention, MM-QFormer, and multimodal node classification.

Pure graph math lives in :mod:`graph4mm.ops`; modules wrap it.
"""
from graph4mm.attention import (
    HopAwareAttention,
    HopAwareAttentionConfig,
    HopDiffusedAttention,
    HopDiffusedAttentionConfig,
)
from graph4mm.data import MultimodalGraph, load_magb, synthetic_multimodal_graph
from graph4mm.node_classification import (
    Graph4MMNodeClassifier,
    Graph4MMNodeClassifierConfig,
    NodeClassificationResult,
    train_node_classifier,
)
from graph4mm.qformer import MMQFormer, MMQFormerConfig, MMQFormerOutput

__all__ = [
    "Graph4MMNodeClassifier",
    "Graph4MMNodeClassifierConfig",
    "HopAwareAttention",
    "HopAwareAttentionConfig",
    "HopDiffusedAttention",
    "HopDiffusedAttentionConfig",
    "MMQFormer",
    "MMQFormerConfig",
    "MMQFormerOutput",
    "MultimodalGraph",
    "NodeClassificationResult",
    "load_magb",
    "synthetic_multimodal_graph",
    "train_node_classifier",
]
