"""Pure graph/attention math for graph4mm (no parameters, no modules).

Structure comes in two forms that every function here accepts through :class:`NeighborStructure`:

* **dense**: an ``(B, N, N)`` edge mask (and optional weights); slot ``s`` of node ``i`` is node ``s``.
* **sparse**: a neighbour list ``neighbors (B, N, S)`` of indices into ``N`` with ``mask (B, N, S)``;
  slot ``s`` of node ``i`` is node ``neighbors[b, i, s]``. Padding slots hold any valid index with mask False.

Both give attention scores of shape ``(B, H, N, S)`` and propagate values with the same softmaxed
matrix, so the layers are written once and only :meth:`NeighborStructure.scores` /
:meth:`NeighborStructure.propagate` differ. The sparse path runs one head at a time through the
linear-cost kernels of :mod:`graph4mm.gather` (no ``(N, S, Dh)`` tensor is formed), so memory stays
``O(N·(D + S))`` and time ``O(N·S·D)``; :func:`hop_diffused_attention` does scores, softmax and all
diffusion steps of a head before moving to the next one.

Dims: B batch, H heads, N nodes, S slots per node (N when dense, k when sparse), Dh head width,
L number of hop-distance buckets.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

import torch
from torch import Tensor

from graph4mm import gather

__all__ = [
    "NeighborStructure",
    "dense_structure",
    "edge_index_to_neighbors",
    "hop_diffused_attention",
    "hop_distances",
    "hop_neighborhood",
    "masked_softmax",
    "merge_heads",
    "ppr_coefficients",
    "ppr_diffusion",
    "sparse_structure",
    "split_heads",
]


_SOFTMAX_CUTOFF = 30.0  # masked_softmax zeroes entries with score < row max - this


def split_heads(x: Tensor, heads: int) -> Tensor:
    """Split the feature axis into heads.

    Shapes:
        x: ``(B, N, D)`` → ``(B, H, N, D / H)``.
    """
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """Inverse of :func:`split_heads`: ``(B, H, N, Dh)`` → ``(B, N, H·Dh)``."""
    b, h, n, dh = x.shape
    return x.transpose(1, 2).reshape(b, n, h * dh)


def masked_softmax(scores: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    r"""Softmax over the last axis restricted to ``mask``; rows with no valid entry give all zeros.

    .. math::
        T_{is} = \frac{m_{is}\, w_{is}\, e^{s_{is}}}{\sum_{s'} m_{is'}\, w_{is'}\, e^{s_{is'}}},
        \qquad T_{i\cdot} = 0 \text{ if } \sum_s m_{is} = 0 .

    Equal to ``M ⊙ softmax(S)`` renormalised per row, except that weights below ``e^-30`` times the row's
    largest one are set to exactly zero (avoids denormal floats). Weights (``w ≥ 0``) act as a
    multiplicative prior (``log w`` added to the score); ``w = 0`` drops the entry. Never produces NaN, and
    the gradient through masked entries is exactly zero.

    Shapes:
        scores: ``(..., S)``; mask: bool, broadcastable to ``scores``; weights: broadcastable or None.
        returns: same shape as ``scores``.
    """
    if weights is not None:
        mask = mask & (weights > 0)
        scores = scores + torch.log(weights.clamp_min(torch.finfo(scores.dtype).tiny))
    scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
    shifted = scores - row_max
    # exp(-inf) = 0 at masked entries; entries below e^-30 of the row maximum are cut to exactly 0 so that
    # no denormal floats arise (they make CPU kernels, e.g. a sparse backward, ~100x slower)
    e = torch.exp(shifted).masked_fill(shifted < -_SOFTMAX_CUTOFF, 0.0)
    return e / e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)


def ppr_coefficients(K: int, alpha: float) -> list[float]:
    r"""Personalised-PageRank weights :math:`\theta_i = \alpha(1-\alpha)^i`, ``i = 0..K``.

    They are not renormalised: :math:`\sum_i \theta_i = 1-(1-\alpha)^{K+1}` (the truncated PPR series).
    """
    if K < 0:
        raise ValueError(f"K must be >= 0, got {K}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    return [alpha * (1.0 - alpha) ** i for i in range(K + 1)]


def ppr_diffusion(v: Tensor, propagate: Callable[[Tensor], Tensor], K: int, alpha: float) -> Tensor:
    r"""Hop diffusion :math:`\sum_{i=0}^{K} \alpha(1-\alpha)^i\, T^i V` by repeated propagation.

    ``T^i`` is never formed: ``h_0 = V``, ``h_i = propagate(h_{i-1}) = T h_{i-1}``. With ``K = 0``
    (or ``alpha = 1``) the result is ``alpha · V``: each node keeps only its own value.

    Shapes:
        v: ``(B, H, N, Dh)`` (or any shape ``propagate`` accepts, e.g. one head's ``(B·N, Dh)`` rows);
        propagate maps a tensor shaped like ``v`` to one shaped like ``v``; returns like ``v``.
    """
    theta = ppr_coefficients(K, alpha)
    out = theta[0] * v  # a fresh tensor: accumulating in place is safe under autograd
    h = v
    for coef in theta[1:]:
        h = propagate(h)
        out.add_(h, alpha=coef)
    return out


@dataclass(frozen=True)
class NeighborStructure:
    """Which nodes each node may attend to, dense or as a neighbour list.

    Attributes:
        mask: ``(B, N, S)`` bool, True = slot is a real edge.
        neighbors: ``(B, N, S)`` long indices into N (sparse), or None (dense: slot s is node s, S = N).
        weights: ``(B, N, S)`` non-negative edge weights used as a prior in :func:`masked_softmax`, or None.
    """

    mask: Tensor  # (B, N, S) bool, True = real edge
    neighbors: Tensor | None = None  # (B, N, S) long, None for dense (S = N)
    weights: Tensor | None = None  # (B, N, S) edge-weight prior, None = uniform

    @property
    def is_sparse(self) -> bool:
        """True when the structure is a neighbour list."""
        return self.neighbors is not None

    @cached_property
    def neighbor_index(self) -> gather.NeighborIndex:
        """Sparse only: the neighbour list as ``(B·N, S)`` rows of a node-major ``(B·N, ·)`` tensor."""
        if self.neighbors is None:
            raise ValueError("neighbor_index is defined for sparse structures only")
        return gather.NeighborIndex.from_neighbors(self.neighbors)

    def scores(self, q: Tensor, k: Tensor) -> Tensor:
        """Dot products ``q_i · k_j`` for every slot ``j`` of node ``i``.

        Shapes:
            q, k: ``(B, H, N, Dh)`` → ``(B, H, N, S)``.
        """
        if self.neighbors is None:
            return q @ k.transpose(-1, -2)
        b, nh, n, _ = q.shape
        cols = [gather.gather_dot(_head_rows(q, h), _head_rows(k, h), self.neighbor_index) for h in range(nh)]
        return torch.stack(cols, dim=0).view(nh, b, n, -1).transpose(0, 1)

    def propagate(self, t: Tensor, h: Tensor) -> Tensor:
        """One propagation step ``(T h)_i = Σ_s T_is h_{node(i, s)}``.

        Shapes:
            t: ``(B, H, N, S)``; h: ``(B, H, N, Dh)`` → ``(B, H, N, Dh)``.
        """
        if self.neighbors is None:
            return t @ h
        b, nh, n, dh = h.shape
        outs = [gather.gather_sum(_head_rows(t, i), _head_rows(h, i), self.neighbor_index) for i in range(nh)]
        return torch.stack(outs, dim=1).view(b, n, nh, dh).transpose(1, 2)


def _head_rows(x: Tensor, head: int) -> Tensor:
    """Head ``head`` of ``x (B, H, N, C)`` as ``(B·N, C)`` rows (a view when ``x`` is a head view)."""
    return x[:, head].reshape(-1, x.shape[-1])


def hop_diffused_attention(q: Tensor, k: Tensor, v: Tensor, structure: NeighborStructure, K: int,
                           alpha: float) -> Tensor:
    r"""Hop-diffused attention :math:`\sum_{i=0}^{K} \alpha(1-\alpha)^i T^i V`, ``T = masked_softmax(S)``.

    ``S = QK^T/√Dh`` restricted to the structure's edges (per sample and head).

    Sparse structures run one head at a time (scores, softmax and all ``K`` propagations of a head before
    the next head): every temporary is ``(B·N, Dh)`` or ``(B·N, S)``, and the rows gathered at random
    come from one head's ``(B·N, Dh)`` block. Cost ``O(B·N·S·D·(K + 1))``, memory ``O(B·N·(D + S))``.

    Shapes:
        q, k, v: ``(B, H, N, Dh)``; structure over ``(B, N, S)`` → ``(B, H, N, Dh)`` (for a sparse
        structure, a head view of a node-major ``(B, N, H·Dh)`` tensor).
    """
    if K == 0:  # T unused: skip computing scores
        return ppr_diffusion(v, lambda h: h, 0, alpha)
    scale = math.sqrt(q.shape[-1])
    if structure.neighbors is None:
        weights = None if structure.weights is None else structure.weights[:, None]
        t = masked_softmax(structure.scores(q, k) / scale, structure.mask[:, None], weights)
        return ppr_diffusion(v, lambda h: structure.propagate(t, h), K, alpha)
    b, nh, n, dh = q.shape
    nbr = structure.neighbor_index
    rows = nbr.index.shape[0]
    mask = structure.mask.reshape(rows, -1)  # (B·N, S)
    weights = None if structure.weights is None else structure.weights.reshape(rows, -1)
    out = v.new_empty(rows, nh, dh)  # node-major (B, N, H, Dh) storage
    for head in range(nh):
        scores = gather.gather_dot(_head_rows(q, head), _head_rows(k, head), nbr) / scale  # (B·N, S)
        t = masked_softmax(scores, mask, weights)
        propagate = partial(gather.gather_sum, t, nbr=nbr)  # h ↦ T h for this head
        out[:, head] = ppr_diffusion(_head_rows(v, head).contiguous(), propagate, K, alpha)
    return out.view(b, n, nh, dh).transpose(1, 2)


def _node_pair_mask(node_mask: Tensor, neighbors: Tensor | None) -> Tensor:
    """``node_mask[i] & node_mask[node(i, s)]`` → ``(B, N, S)`` (padding nodes neither send nor receive)."""
    if neighbors is None:
        return node_mask[:, :, None] & node_mask[:, None, :]
    cols = node_mask.gather(1, neighbors.flatten(1)).view_as(neighbors)
    return node_mask[:, :, None] & cols


def dense_structure(adj: Tensor, node_mask: Tensor | None = None) -> NeighborStructure:
    """Dense structure from an adjacency matrix; self-loops are dropped (a node enters via the i=0 term).

    A bool adjacency gives uniform edge priors; a float one uses its values as weights (nonzero = edge,
    must be non-negative on edges).

    Shapes:
        adj: ``(B, N, N)`` bool or float; node_mask: ``(B, N)`` bool or None.
    """
    n = adj.shape[-1]
    mask = adj != 0
    mask = mask & ~torch.eye(n, dtype=torch.bool, device=adj.device)
    if node_mask is not None:
        mask = mask & _node_pair_mask(node_mask, None)
    weights = None
    if adj.dtype != torch.bool:
        _check_non_negative(adj, mask)
        weights = adj.to(torch.get_default_dtype() if not adj.is_floating_point() else adj.dtype)
    return NeighborStructure(mask=mask, weights=weights)


def sparse_structure(
    neighbors: Tensor,
    neighbor_mask: Tensor | None = None,
    neighbor_weights: Tensor | None = None,
    node_mask: Tensor | None = None,
) -> NeighborStructure:
    """Sparse structure from a neighbour list; entries pointing at the node itself are dropped.

    Neighbour lists should not repeat a neighbour (a repeated entry is counted twice).

    Shapes:
        neighbors: ``(B, N, k)`` long; neighbor_mask, neighbor_weights: ``(B, N, k)`` or None;
        node_mask: ``(B, N)`` bool or None.
    """
    n = neighbors.shape[1]
    if neighbors.numel() and (int(neighbors.min()) < 0 or int(neighbors.max()) >= n):
        raise ValueError(f"neighbour indices must lie in [0, {n}), got range "
                         f"[{int(neighbors.min())}, {int(neighbors.max())}]")
    mask = torch.ones_like(neighbors, dtype=torch.bool) if neighbor_mask is None else neighbor_mask.bool()
    self_index = torch.arange(n, device=neighbors.device)[None, :, None]
    mask = mask & (neighbors != self_index)
    if node_mask is not None:
        mask = mask & _node_pair_mask(node_mask, neighbors)
    if neighbor_weights is not None:
        _check_non_negative(neighbor_weights, mask)
    return NeighborStructure(mask=mask, neighbors=neighbors, weights=neighbor_weights)


def _check_non_negative(weights: Tensor, mask: Tensor) -> None:
    if bool((weights.masked_fill(~mask, 0) < 0).any()):
        raise ValueError("edge weights must be non-negative (they act as a multiplicative attention prior)")


def hop_distances(adj_mask: Tensor, max_hops: int) -> Tensor:
    """BFS hop distances on a dense graph, capped: unreachable or beyond ``max_hops`` → ``max_hops + 1``.

    Costs ``O(max_hops · N^3)``; meant for small dense graphs (use :func:`hop_neighborhood` otherwise).

    Shapes:
        adj_mask: ``(B, N, N)`` bool (edge i → j: j is a neighbour of i) → ``(B, N, N)`` long.
    """
    b, n, _ = adj_mask.shape
    eye = torch.eye(n, dtype=torch.bool, device=adj_mask.device).expand(b, n, n)
    dist = torch.full((b, n, n), max_hops + 1, dtype=torch.long, device=adj_mask.device)
    dist[eye] = 0
    reached = eye.clone()
    frontier = eye.to(torch.float32)
    a = adj_mask.to(torch.float32)
    for hop in range(1, max_hops + 1):
        new = ((frontier @ a) > 0) & ~reached
        dist[new] = hop
        reached |= new
        frontier = new.to(torch.float32)
    return dist


def hop_neighborhood(neighbors: Tensor, mask: Tensor, max_hops: int) -> tuple[Tensor, Tensor, Tensor]:
    """All nodes within ``max_hops`` hops of each node (itself included, at distance 0) from a neighbour list.

    Candidates are expanded level by level (``k^h`` at level ``h``), then de-duplicated per node
    keeping the smallest distance. Output has ``M = Σ_{h=0..max_hops} k^h`` slots; cost ``O(N · M log M)``.

    Shapes:
        neighbors, mask: ``(B, N, k)`` → (hop_neighbors ``(B, N, M)`` long, hop_mask ``(B, N, M)`` bool,
        hop_dist ``(B, N, M)`` long).
    """
    b, n, k = neighbors.shape
    index = torch.arange(n, device=neighbors.device).view(1, n, 1).expand(b, n, 1)
    level_idx, level_mask = index, torch.ones_like(index, dtype=torch.bool)
    idx_parts, mask_parts, dist_parts = [level_idx], [level_mask], [torch.zeros_like(level_idx)]
    for hop in range(1, max_hops + 1):
        width = level_idx.shape[-1]
        flat = level_idx.reshape(b, n * width)  # neighbours of every node reached at the previous level
        nxt = neighbors.gather(1, flat[..., None].expand(b, n * width, k)).view(b, n, width * k)
        nxt_mask = mask.gather(1, flat[..., None].expand(b, n * width, k)).view(b, n, width * k)
        nxt_mask = nxt_mask & level_mask.repeat_interleave(k, dim=-1)
        level_idx, level_mask = nxt, nxt_mask
        idx_parts.append(nxt)
        mask_parts.append(nxt_mask)
        dist_parts.append(torch.full_like(nxt, hop))
    idx, valid, dist = (torch.cat(p, dim=-1) for p in (idx_parts, mask_parts, dist_parts))
    buckets = max_hops + 1
    key = idx * buckets + dist
    key = key.masked_fill(~valid, n * buckets)  # invalid entries sort last
    key, _ = key.sort(dim=-1)
    idx, dist = key // buckets, key % buckets
    first = torch.ones_like(valid)
    first[..., 1:] = idx[..., 1:] != idx[..., :-1]
    hop_mask = first & (idx < n)
    hop_neighbors = torch.where(hop_mask, idx, torch.zeros_like(idx))
    return hop_neighbors, hop_mask, torch.where(hop_mask, dist, torch.zeros_like(dist))


def edge_index_to_neighbors(
    edge_index: Tensor,
    num_nodes: int,
    max_degree: int | None = None,
    undirected: bool = True,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Convert an edge index to a padded neighbour list (duplicates and self-loops removed).

    Nodes with more than ``max_degree`` neighbours keep a seeded random subset of that size.

    Shapes:
        edge_index: ``(2, E)`` long (row 0 source, row 1 target; node ``src`` gets neighbour ``dst``)
        → (neighbors ``(N, k)`` long, neighbor_mask ``(N, k)`` bool), ``k`` = max kept degree (≥ 1).
    """
    src, dst = edge_index[0].long(), edge_index[1].long()
    if undirected:
        src, dst = torch.cat([src, dst]), torch.cat([dst, src])
    keep = src != dst
    pairs = torch.unique(torch.stack([src[keep], dst[keep]]), dim=1)
    src, dst = pairs[0], pairs[1]
    gen = torch.Generator().manual_seed(seed)
    # random order within each source node, then stable sort by source
    order = torch.randperm(src.numel(), generator=gen)
    src, dst = src[order], dst[order]
    order = torch.sort(src, stable=True).indices
    src, dst = src[order], dst[order]
    degree = torch.bincount(src, minlength=num_nodes)
    start = torch.cumsum(degree, 0) - degree
    rank = torch.arange(src.numel()) - start[src]
    k = int(degree.max()) if src.numel() else 1
    if max_degree is not None:
        k = min(k, max_degree)
    k = max(k, 1)
    keep = rank < k
    neighbors = torch.zeros(num_nodes, k, dtype=torch.long)
    neighbor_mask = torch.zeros(num_nodes, k, dtype=torch.bool)
    neighbors[src[keep], rank[keep]] = dst[keep]
    neighbor_mask[src[keep], rank[keep]] = True
    return neighbors, neighbor_mask
