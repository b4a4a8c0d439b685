"""LEGO relationship-graph fusion for video anomaly detection (Ding et al., ICLR 2025).

Per feature level (clip, frame, patch, text, motion) a snippet-by-snippet relationship graph, its normalised powers,
a learnable pairwise fusion of those powers into one graph G, and an N-independent encoder that propagates
node features over G and exports G's top-k neighbour lists, with a windowed linear-cost mode for long videos.
The names below are imported on first use, so :mod:`fusion.config` loads without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LEGOConfig": "fusion.config",
    "LEGOGraphEncoder": "fusion.encoder",
    "LEGOOutput": "fusion.encoder",
    "clip_graph": "fusion.graphs",
    "frame_graph": "fusion.graphs",
    "patch_graph": "fusion.graphs",
    "set_graph": "fusion.graphs",
    "text_affinity": "fusion.graphs",
    "text_graph": "fusion.graphs",
    "FusionWeights": "fusion.lego",
    "LEGOFusion": "fusion.lego",
    "fuse_pair": "fusion.lego",
    "level_pairs": "fusion.lego",
    "degree_variance": "fusion.losses",
    "degree_variance_loss": "fusion.losses",
    "RELATION_STATS": "fusion.ops",
    "graph_powers": "fusion.ops",
    "normalize_graph": "fusion.ops",
    "relation_readout": "fusion.ops",
    "relationship_graph": "fusion.ops",
    "row_l1_normalize": "fusion.ops",
    "scale_powers_by_size": "fusion.ops",
    "topk_neighbors": "fusion.ops",
    "WindowLayout": "fusion.windows",
    "window_layout": "fusion.windows",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
