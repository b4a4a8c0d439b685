"""Shared helpers for graph4mm tests: small random graphs in dense and neighbour-list form."""
from __future__ import annotations

import torch
from torch import Tensor


def random_adj(b: int, n: int, p: float, seed: int) -> Tensor:
    """Random directed bool adjacency (B, N, N) without self-loops."""
    gen = torch.Generator().manual_seed(seed)
    adj = torch.rand(b, n, n, generator=gen) < p
    return adj & ~torch.eye(n, dtype=torch.bool)


def to_neighbors(adj: Tensor, extra_slots: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Dense adjacency (B, N, N) → neighbour list (B, N, k) with shuffled slots and masked padding slots.

    Padding slots point at random valid nodes (mask False), so a layer that ignored the mask would differ.
    """
    gen = torch.Generator().manual_seed(seed)
    b, n, _ = adj.shape
    k = int(adj.sum(-1).max()) + extra_slots
    neighbors = torch.randint(0, n, (b, n, k), generator=gen)
    mask = torch.zeros(b, n, k, dtype=torch.bool)
    for bi in range(b):
        for i in range(n):
            nbrs = torch.nonzero(adj[bi, i]).flatten()
            slots = torch.randperm(k, generator=gen)[: nbrs.numel()]
            neighbors[bi, i, slots] = nbrs
            mask[bi, i, slots] = True
    return neighbors, mask


def bfs_distances(adj: Tensor, cap: int) -> Tensor:
    """Reference BFS hop distances of one graph (N, N) with a plain queue; > cap or unreachable → cap + 1."""
    n = adj.shape[0]
    dist = torch.full((n, n), cap + 1, dtype=torch.long)
    for s in range(n):
        dist[s, s] = 0
        queue = [s]
        while queue:
            u = queue.pop(0)
            if dist[s, u] == cap:
                continue
            for v in torch.nonzero(adj[u]).flatten().tolist():
                if dist[s, v] > dist[s, u] + 1:
                    dist[s, v] = dist[s, u] + 1
                    queue.append(v)
    return dist
