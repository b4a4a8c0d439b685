"""graph4mm: Graph4MM's hop-diffused / hop-aware graph attention and MM-QFormer.

Pure graph math lives in :mod:`graph4mm.ops` (neighbour-list kernels in :mod:`graph4mm.gather`);
modules wrap it. Multimodal node classification (MAGB) is in :mod:`graph4mm.node_classification`.
The names below are imported on first use, so the configs (:mod:`graph4mm.config`) load without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GraphDataError": "graph4mm.errors",
    "HopAwareAttention": "graph4mm.attention",
    "HopAwareAttentionConfig": "graph4mm.config",
    "HopDiffusedAttention": "graph4mm.attention",
    "HopDiffusedAttentionConfig": "graph4mm.config",
    "MMQFormer": "graph4mm.qformer",
    "MMQFormerConfig": "graph4mm.config",
    "MMQFormerOutput": "graph4mm.qformer",
}
_SUBMODULES = ("gather", "ops")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    """Import an exported name (or submodule) on first use (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
