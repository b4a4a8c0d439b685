"""LEGO relationship-graph fusion for video anomaly detection (Ding et al., ICLR 2025).

Per feature level (clip, frame, patch, text, motion) a snippet-by-snippet relationship graph, its normalised powers,
a learnable pairwise fusion of those powers into one graph G, and an N-independent encoder that propagates
node features over G and exports G's top-k neighbour lists, with a windowed linear-cost mode for long videos.
The names below are imported on first use, so :mod:`fusion.config` loads without torch.
"""
from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, [], {
    'config': ['LEGOConfig'],
    'encoder': ['LEGOGraphEncoder', 'LEGOOutput', 'encode_members'],
    'graphs': ['clip_graph', 'frame_graph', 'patch_graph', 'prompt_cosine', 'set_graph', 'text_affinity',
               'text_graph'],
    'lego': ['FusionWeights', 'LEGOFusion', 'fuse_pair', 'level_pairs'],
    'losses': ['degree_variance', 'degree_variance_loss'],
    'ops': [
        'RELATION_STATS',
        'graph_powers',
        'normalize_graph',
        'relation_readout',
        'relationship_graph',
        'row_l1_normalize',
        'scale_powers_by_size',
        'topk_neighbors',
    ],
    'windows': ['WindowLayout', 'window_layout'],
})
