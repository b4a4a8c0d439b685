"""Multimodal graph node classification with Graph4MM (the MAGB task): model, trainer and graph loaders.

Not needed by the core layers (:mod:`graph4mm.attention`, :mod:`graph4mm.qformer`); used by the tests
and standalone benchmarks of the node-classification task.
"""
from graph4mm.errors import GraphDataError
from graph4mm.node_classification.data import MultimodalGraph, load_magb, synthetic_multimodal_graph
from graph4mm.node_classification.model import (
    Graph4MMNodeClassifier,
    Graph4MMNodeClassifierConfig,
    NodeClassificationResult,
    train_node_classifier,
)

__all__ = [
    "Graph4MMNodeClassifier",
    "Graph4MMNodeClassifierConfig",
    "GraphDataError",
    "MultimodalGraph",
    "NodeClassificationResult",
    "load_magb",
    "synthetic_multimodal_graph",
    "train_node_classifier",
]
