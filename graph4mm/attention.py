"""Graph transformer layers of Graph4MM: Hop-Diffused Attention and the cheaper Hop-Aware Attention.

Both are post-LN transformer layers over graph nodes,

.. math::
    H = \\mathrm{LN}_1\\big(X + W_O\\,\\mathrm{merge}_h(\\mathrm{Attn}_h(X))\\big), \\qquad
    Y = \\mathrm{LN}_2\\big(H + \\mathrm{FFN}(H)\\big),

and differ only in ``Attn_h``. Structure is given either densely (``adj (B, N, N)``) or as a neighbour
list (``neighbors (B, N, k)`` + ``neighbor_mask``) — exactly one of them. Attention is computed per
sample and per head (no mask broadcast across the batch, no averaging over samples). Padded nodes
(``node_mask`` False) neither send nor receive messages, and their outputs are their inputs unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graph4mm import ops
from graph4mm.config import HopAwareAttentionConfig, HopDiffusedAttentionConfig

__all__ = [
    "HopAwareAttention",
    "HopAwareAttentionConfig",
    "HopDiffusedAttention",
    "HopDiffusedAttentionConfig",
]


class _GraphTransformerLayer(nn.Module):
    """Shared shell: Q/K/V/O projections, residual + LayerNorm, FFN, input checks; subclasses: ``_attend``.

    At inference (no autograd) on graphs of more than a few hundred nodes, the node-wise part after
    attention (output projection, LayerNorms, FFN) runs in row chunks: same result, no
    ``(B, N, ffn_ratio·D)`` temporary, and its working set stays in cache.
    """

    def __init__(self, dim: int, heads: int, ffn_ratio: float, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.dim, self.heads = dim, heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        hidden = round(ffn_ratio * dim)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        """Re-initialise all parameters (Xavier projections, zero biases, unit LayerNorms)."""
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.ffn[0], self.ffn[3]):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()

    def forward(
        self,
        x: Tensor,
        adj: Tensor | None = None,
        neighbors: Tensor | None = None,
        neighbor_mask: Tensor | None = None,
        node_mask: Tensor | None = None,
        neighbor_weights: Tensor | None = None,
    ) -> Tensor:
        """Apply the layer.

        Args:
            x: node features ``(B, N, D)``.
            adj: dense structure ``(B, N, N)`` bool or float (nonzero = edge), or None.
            neighbors: sparse structure ``(B, N, k)`` indices into N, or None. Exactly one of adj / neighbors.
            neighbor_mask: ``(B, N, k)`` bool, True = real edge (default: all True).
            node_mask: ``(B, N)`` bool, True = real node (default: all True).
            neighbor_weights: ``(B, N, k)`` non-negative edge weights (sparse path only), or None.

        Returns:
            ``(B, N, D)`` updated node features (padded nodes: input unchanged).
        """
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must be (B, N, {self.dim}), got {tuple(x.shape)}")
        if (adj is None) == (neighbors is None):
            raise ValueError("give exactly one of adj (dense) or neighbors (sparse)")
        if adj is not None and (neighbor_mask is not None or neighbor_weights is not None):
            raise ValueError("neighbor_mask / neighbor_weights only go with neighbors")
        q = ops.split_heads(self.q_proj(x), self.heads)  # (B, H, N, Dh)
        k = ops.split_heads(self.k_proj(x), self.heads)
        v = ops.split_heads(self.v_proj(x), self.heads)
        attn = self._attend(q, k, v, adj, neighbors, neighbor_mask, neighbor_weights, node_mask)
        attn = ops.merge_heads(attn)  # (B, N, D), a tensor of its own (never a view of x)
        rows = self._rows_per_chunk
        if torch.is_grad_enabled() or attn.shape[1] <= rows:
            y = self._node_block(x, attn)
        else:  # inference on a long graph: row chunks written over attn, no (B, N, ffn_ratio·D) temporary
            for i in range(0, attn.shape[1], rows):
                attn[:, i:i + rows] = self._node_block(x[:, i:i + rows], attn[:, i:i + rows])
            y = attn
        if node_mask is not None:
            y = torch.where(node_mask[..., None], y, x)
        return y

    @property
    def _rows_per_chunk(self) -> int:
        """Nodes per row chunk of :meth:`_node_block` at inference: about 4 MiB of FFN hidden state."""
        return max(1, (1 << 20) // self.ffn[0].out_features)

    def _node_block(self, x: Tensor, attn: Tensor) -> Tensor:
        """Everything after attention, node by node: ``LN2(H + FFN(H))``, ``H = LN1(X + W_O attn)``.

        Shapes:
            x, attn: ``(B, n, D)`` (all nodes or a row chunk of them) → ``(B, n, D)``.
        """
        h = self.norm1(x + self.dropout(self.o_proj(attn)))
        return self.norm2(h + self.dropout(self.ffn(h)))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, adj: Tensor | None, neighbors: Tensor | None,
                neighbor_mask: Tensor | None, neighbor_weights: Tensor | None,
                node_mask: Tensor | None) -> Tensor:
        raise NotImplementedError


class HopDiffusedAttention(_GraphTransformerLayer):
    r"""Hop-Diffused Attention layer (Graph4MM, ICML 2025), multi-head, dense or sparse structure.

    Per sample b and head h, with scores :math:`S = QK^\top/\sqrt{D_h}` restricted to graph edges
    (self-loops are not edges):

    .. math::
        T = \operatorname{masked\,softmax}_{j \in \mathcal{N}(i)}(S_{ij}), \qquad
        \mathcal{A}V = \sum_{i=0}^{K} \alpha(1-\alpha)^i\, T^i V ,

    computed by repeated propagation (``T^i`` never formed; the sparse path costs ``O(N·k·K·D)``).
    A node's output depends only on nodes within ``K`` hops. Nodes with no neighbours get ``α V`` (no NaN).

    Degenerate cases: ``K = 0`` gives :math:`\mathcal{A} = \alpha I` — structure is ignored and each node's
    attention output is ``α`` times its own value (the layer becomes a per-node MLP block); ``α = 1`` gives
    :math:`\theta = (1, 0, \dots)`, i.e. the same as ``K = 0, α = 1`` (:math:`\mathcal{A} = I`).
    Float edge weights (dense float ``adj`` or ``neighbor_weights``) multiply the attention before
    renormalisation (``T_ij ∝ w_ij e^{S_ij}``).

    Shapes:
        x ``(B, N, D)``; adj ``(B, N, N)`` or neighbors / neighbor_mask ``(B, N, k)``; node_mask ``(B, N)``
        → ``(B, N, D)``.
    """

    def __init__(self, config: HopDiffusedAttentionConfig) -> None:
        super().__init__(config.dim, config.heads, config.ffn_ratio, config.dropout)
        ops.ppr_coefficients(config.K, config.alpha)  # validates K and alpha
        self.config = config
        self.reset_parameters()

    def extra_repr(self) -> str:
        c = self.config
        return f"dim={c.dim}, heads={c.heads}, K={c.K}, alpha={c.alpha}"

    def _attend(self, q, k, v, adj, neighbors, neighbor_mask, neighbor_weights, node_mask):
        if adj is not None:
            structure = ops.dense_structure(adj, node_mask)
        else:
            structure = ops.sparse_structure(neighbors, neighbor_mask, neighbor_weights, node_mask)
        return ops.hop_diffused_attention(q, k, v, structure, self.config.K, self.config.alpha)


class HopAwareAttention(_GraphTransformerLayer):
    r"""Hop-Aware Attention: learnable hop-distance embeddings instead of diffusion (cheaper variant).

    With BFS hop distance :math:`d_{ij} \le` ``max_hops`` and learnable :math:`e_d \in \mathbb{R}^D`,
    node ``j`` as seen from node ``i`` is :math:`x_j + e_{d_{ij}}` (the hop embedding is added to the node
    embedding before the key/value projections):

    .. math::
        k_{ij} = W_K x_j + W_K e_{d_{ij}}, \quad v_{ij} = W_V x_j + W_V e_{d_{ij}}, \quad
        \mathrm{out}_i = \sum_{j:\, d_{ij} \le \text{max\_hops}} \operatorname{softmax}_j
        \big(q_i^\top k_{ij}/\sqrt{D_h}\big)\, v_{ij} .

    Attention is restricted to the capped-hop neighbourhood (itself at distance 0 included); farther or
    unreachable nodes are not attended. Dense input uses BFS by boolean matrix products
    (``O(max_hops·N^3)``, small N only); a neighbour list is expanded to its ``max_hops`` neighbourhood
    (``M = Σ_h k^h`` slots per node, cost ``O(N·M·D)``) — affordable for long videos only with small
    ``k``/``max_hops``. Edge weights are ignored (only distances matter). The hop terms cost
    ``O(N·L·D)`` with ``L = max_hops + 1``: ``q_i·W_K e_d`` is computed once per bucket and gathered.

    Shapes:
        x ``(B, N, D)``; adj ``(B, N, N)`` or neighbors / neighbor_mask ``(B, N, k)``; node_mask ``(B, N)``
        → ``(B, N, D)``.
    """

    def __init__(self, config: HopAwareAttentionConfig) -> None:
        super().__init__(config.dim, config.heads, config.ffn_ratio, config.dropout)
        if config.max_hops < 0:
            raise ValueError(f"max_hops must be >= 0, got {config.max_hops}")
        self.config = config
        self.hop_embedding = nn.Embedding(config.max_hops + 1, config.dim)  # e_d, d = 0..max_hops
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise projections, norms and hop embeddings (normal, std 0.02)."""
        super().reset_parameters()
        nn.init.normal_(self.hop_embedding.weight, std=0.02)

    def extra_repr(self) -> str:
        c = self.config
        return f"dim={c.dim}, heads={c.heads}, max_hops={c.max_hops}"

    def _attend(self, q, k, v, adj, neighbors, neighbor_mask, neighbor_weights, node_mask):
        b, nh, n, dh = q.shape
        buckets = self.config.max_hops + 1
        if adj is not None:
            edges = ops.dense_structure(adj != 0, node_mask).mask
            dist = ops.hop_distances(edges, self.config.max_hops)  # (B, N, N)
            mask = dist < buckets
            if node_mask is not None:
                mask = mask & node_mask[:, :, None] & node_mask[:, None, :]
            structure = ops.NeighborStructure(mask=mask)
        else:
            edges = ops.sparse_structure(neighbors, neighbor_mask, None, node_mask)
            hop_nbrs, mask, dist = ops.hop_neighborhood(neighbors, edges.mask, self.config.max_hops)
            if node_mask is not None:
                mask = mask & node_mask[:, :, None]
            structure = ops.NeighborStructure(mask=mask, neighbors=hop_nbrs)
        dist = dist.clamp_max(buckets - 1)  # beyond-cap entries are masked anyway
        # hop embeddings through the key/value projections (no bias): (H, L, Dh)
        hop_k = (self.hop_embedding.weight @ self.k_proj.weight.T).view(buckets, nh, dh).transpose(0, 1)
        hop_v = (self.hop_embedding.weight @ self.v_proj.weight.T).view(buckets, nh, dh).transpose(0, 1)
        hop_scores = q @ hop_k.transpose(-1, -2)[None]  # (B, H, N, L): q_i · W_K e_d
        dist_h = dist[:, None].expand(b, nh, n, dist.shape[-1])
        scores = structure.scores(q, k) + hop_scores.gather(-1, dist_h)  # (B, H, N, S)
        t = ops.masked_softmax(scores / math.sqrt(dh), structure.mask[:, None])
        mass = torch.zeros(b, nh, n, buckets, dtype=t.dtype, device=t.device).scatter_add_(-1, dist_h, t)
        return structure.propagate(t, v) + mass @ hop_v[None]  # (B, H, N, Dh)
