"""LEGO relationship-graph fusion for video anomaly detection (Ding et al., ICLR 2025).

Per feature level (clip, frame, patch, text, motion) a snippet-by-snippet relationship graph, its normalised powers,
a learnable pairwise fusion of those powers into one graph G, and an N-independent encoder that propagates
node features over G and exports G's top-k neighbour lists, with a windowed linear-cost mode for long videos.
"""

from fusion.config import LEGOConfig
from fusion.encoder import LEGOGraphEncoder, LEGOOutput
from fusion.graphs import clip_graph, frame_graph, patch_graph, set_graph, text_affinity, text_graph
from fusion.lego import FusionWeights, LEGOFusion, fuse_pair, level_pairs
from fusion.losses import degree_variance, degree_variance_loss
from fusion.ops import (
    RELATION_STATS,
    graph_powers,
    normalize_graph,
    relation_readout,
    relationship_graph,
    row_l1_normalize,
    scale_powers_by_size,
    topk_neighbors,
)
from fusion.windows import WindowLayout, window_layout

__all__ = [
    "RELATION_STATS",
    "FusionWeights",
    "LEGOConfig",
    "LEGOFusion",
    "LEGOGraphEncoder",
    "LEGOOutput",
    "WindowLayout",
    "clip_graph",
    "degree_variance",
    "degree_variance_loss",
    "frame_graph",
    "fuse_pair",
    "graph_powers",
    "level_pairs",
    "normalize_graph",
    "patch_graph",
    "relation_readout",
    "relationship_graph",
    "row_l1_normalize",
    "scale_powers_by_size",
    "set_graph",
    "text_affinity",
    "text_graph",
    "topk_neighbors",
    "window_layout",
]
