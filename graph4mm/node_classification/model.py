"""Graph4MM node classifier for multimodal graphs (the MAGB task) and a small full-batch trainer."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graph4mm import ops
from graph4mm.attention import (
    HopAwareAttention,
    HopAwareAttentionConfig,
    HopDiffusedAttention,
    HopDiffusedAttentionConfig,
)
from graph4mm.node_classification.data import MultimodalGraph
from graph4mm.qformer import MMQFormer, MMQFormerConfig

__all__ = [
    "Graph4MMNodeClassifier",
    "Graph4MMNodeClassifierConfig",
    "NodeClassificationResult",
    "train_node_classifier",
]

GraphLayer = Literal["hop_diffused", "hop_aware", "none"]


@dataclass(frozen=True)
class Graph4MMNodeClassifierConfig:
    """Configuration of :class:`Graph4MMNodeClassifier`."""

    image_dim: int  # width of each node's image embedding D_i
    text_dim: int  # width of each node's text embedding D_t
    num_classes: int  # number of node classes C
    dim: int = 64  # hidden width D
    heads: int = 4  # attention heads in graph layers and MM-QFormer
    graph_layers: int = 1  # number of stacked graph attention layers
    graph_layer: GraphLayer = "hop_diffused"  # "hop_diffused", "hop_aware" or "none" (structure-free)
    K: int = 2  # diffusion steps of hop-diffused attention
    alpha: float = 0.1  # PPR teleport probability of hop-diffused attention
    max_hops: int = 2  # hop cap of hop-aware attention
    num_queries: int = 4  # MM-QFormer query tokens per node
    qformer_layers: int = 1  # MM-QFormer layers
    dropout: float = 0.1  # dropout inside graph layers and MM-QFormer


class Graph4MMNodeClassifier(nn.Module):
    """Graph4MM for multimodal graph node classification.

    1. Project each node's image and text embedding to ``D``: ``v_i, t_i``; node token ``x_i = v_i + t_i``.
    2. ``graph_layers`` graph attention layers over the graph (``hop_diffused``:
       :class:`HopDiffusedAttention`; ``hop_aware``: :class:`HopAwareAttention`; ``none``: hop-diffused
       attention over the complete graph of real nodes, i.e. plain self-attention that ignores the edges —
       the structure-free baseline, ``O(N^2)``, small graphs only) → structure-aware ``h_i``.
    3. Per node, :class:`MMQFormer` with visual tokens ``[h_i, v_i]`` and text token ``t_i``; the mean
       of its query tokens goes through a linear classifier.

    Shapes:
        image ``(B, N, D_i)``, text ``(B, N, D_t)``; structure as in :class:`HopDiffusedAttention`
        (adj ``(B, N, N)`` or neighbors / neighbor_mask ``(B, N, k)``); node_mask ``(B, N)``
        → logits ``(B, N, C)``.
    """

    def __init__(self, config: Graph4MMNodeClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.image_proj = nn.Linear(c.image_dim, c.dim)
        self.text_proj = nn.Linear(c.text_dim, c.dim)
        if c.graph_layer == "hop_aware":
            aware = HopAwareAttentionConfig(dim=c.dim, heads=c.heads, max_hops=c.max_hops, dropout=c.dropout)
            layers = [HopAwareAttention(aware) for _ in range(c.graph_layers)]
        elif c.graph_layer in ("hop_diffused", "none"):
            diffused = HopDiffusedAttentionConfig(dim=c.dim, heads=c.heads, K=c.K, alpha=c.alpha,
                                                  dropout=c.dropout)
            layers = [HopDiffusedAttention(diffused) for _ in range(c.graph_layers)]
        else:
            raise ValueError(f"graph_layer must be 'hop_diffused', 'hop_aware' or 'none', "
                             f"got {c.graph_layer!r}")
        self.graph = nn.ModuleList(layers)
        self.qformer = MMQFormer(MMQFormerConfig(dim=c.dim, visual_dim=c.dim, text_dim=c.dim, heads=c.heads,
                                                 layers=c.qformer_layers, num_queries=c.num_queries,
                                                 dropout=c.dropout))
        self.head = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.num_classes))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every submodule."""
        for lin in (self.image_proj, self.text_proj, self.head[1]):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.head[0].reset_parameters()
        for layer in self.graph:
            layer.reset_parameters()
        self.qformer.reset_parameters()

    def extra_repr(self) -> str:
        c = self.config
        return (f"image_dim={c.image_dim}, text_dim={c.text_dim}, num_classes={c.num_classes}, dim={c.dim}, "
                f"graph_layer={c.graph_layer!r}, graph_layers={c.graph_layers}")

    def forward(
        self,
        image: Tensor,
        text: Tensor,
        adj: Tensor | None = None,
        neighbors: Tensor | None = None,
        neighbor_mask: Tensor | None = None,
        node_mask: Tensor | None = None,
    ) -> Tensor:
        """Class logits for every node (see class docstring for shapes)."""
        b, n, _ = image.shape
        v, t = self.image_proj(image), self.text_proj(text)  # (B, N, D)
        h = v + t
        if self.config.graph_layer == "none":  # structure-free: complete graph over real nodes
            adj = torch.ones(b, n, n, dtype=torch.bool, device=image.device)
            neighbors, neighbor_mask = None, None
        for layer in self.graph:
            h = layer(h, adj=adj, neighbors=neighbors, neighbor_mask=neighbor_mask, node_mask=node_mask)
        visual = torch.stack([h, v], dim=2).reshape(b * n, 2, -1)  # (B·N, 2, D)
        out = self.qformer(visual, t.reshape(b * n, 1, -1))
        pooled = out.query_tokens.mean(dim=1).view(b, n, -1)  # (B, N, D)
        return self.head(pooled)


@dataclass
class NodeClassificationResult:
    """Outcome of :func:`train_node_classifier` (accuracies of the epoch with the best validation accuracy).

    Attributes:
        model: the trained model, with the weights of the selected epoch.
        train_accuracy, val_accuracy, test_accuracy: accuracies in [0, 1] at the selected epoch.
        best_epoch: the selected epoch (0-based).
    """

    model: Graph4MMNodeClassifier
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    best_epoch: int


def train_node_classifier(
    graph: MultimodalGraph,
    config: Graph4MMNodeClassifierConfig,
    epochs: int = 100,
    lr: float = 5e-3,
    weight_decay: float = 1e-4,
    max_degree: int | None = 32,
    seed: int = 0,
) -> NodeClassificationResult:
    """Full-batch transductive training with cross-entropy on the train split; model selection on val.

    The graph is made undirected and turned into a neighbour list of at most ``max_degree`` neighbours
    per node (seeded subsample), so cost is linear in N. The test accuracy is read at the epoch with
    the best validation accuracy (never selected on test).

    Shapes:
        graph: :class:`MultimodalGraph` with N nodes → :class:`NodeClassificationResult`.
    """
    torch.manual_seed(seed)
    model = Graph4MMNodeClassifier(config)
    neighbors, neighbor_mask = ops.edge_index_to_neighbors(graph.edge_index, graph.num_nodes, max_degree,
                                                           seed=seed)
    inputs = {"image": graph.image[None], "text": graph.text[None], "neighbors": neighbors[None],
              "neighbor_mask": neighbor_mask[None]}
    labels = graph.labels
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def accuracy(pred: Tensor, idx: Tensor) -> float:
        return float((pred[idx] == labels[idx]).float().mean())

    best = (-1.0, 0, (0.0, 0.0, 0.0), copy.deepcopy(model.state_dict()))
    for epoch in range(epochs):
        model.train()
        logits = model(**inputs)[0]
        loss = F.cross_entropy(logits[graph.train_idx], labels[graph.train_idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(**inputs)[0].argmax(-1)
        accs = tuple(accuracy(pred, idx) for idx in (graph.train_idx, graph.val_idx, graph.test_idx))
        if accs[1] > best[0]:
            best = (accs[1], epoch, accs, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[3])
    model.eval()
    train_acc, val_acc, test_acc = best[2]
    return NodeClassificationResult(model=model, train_accuracy=train_acc, val_accuracy=val_acc,
                                    test_accuracy=test_acc, best_epoch=best[1])
