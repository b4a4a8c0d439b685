"""A bounded memory of normal feature vectors: uniform sampling, reduction, and k-NN distances.

Built for hours of footage: :class:`Reservoir` keeps a uniform sample of at most ``pool`` vectors out of any
number streamed through it (a random key per vector, the smallest keys kept), :func:`reduce_memory` shrinks the
pool to ``size`` vectors by greedy coreset selection (PatchCore's k-center greedy on a random projection) or
k-means, and :func:`knn_distance` scores queries by their mean distance to the k nearest memory vectors in
chunks (memory use ``chunk x size``, whatever the number of queries). Exact search over a bounded memory is
one matrix product; ``bench/oneclass.py`` measures it against faiss's flat index.

Shapes: ``n`` vectors, ``w`` their width, ``m`` memory size, ``p`` projection width, ``Q`` queries.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

REDUCTIONS = ("coreset", "kmeans", "random")


class Reservoir:
    """A uniform random sample of at most ``size`` rows of everything passed to :meth:`add` (bounded memory).

    Each row gets a uniform random key and the ``size`` smallest keys are kept, which is a uniform sample
    without replacement of all rows seen, whatever the order and the chunking. Once the pool is full, a new row
    enters only if its key beats the largest kept one, so the cost per row falls as more are seen.
    """

    def __init__(self, size: int, width: int, seed: int = 0) -> None:
        self.size = size
        self.items = torch.empty(size, width)  # shape = [size, w]
        self.keys = torch.empty(size)
        self.count = 0  # rows held
        self.seen = 0  # rows offered
        self.generator = torch.Generator().manual_seed(seed)

    def add(self, rows: Tensor) -> None:
        """Offer ``rows`` ``(n, w)``."""
        rows = rows.detach().float().cpu().reshape(-1, self.items.shape[1])
        keys = torch.rand(rows.shape[0], generator=self.generator)
        self.seen += rows.shape[0]
        take = min(self.size - self.count, rows.shape[0])
        if take > 0:
            self.items[self.count:self.count + take] = rows[:take]
            self.keys[self.count:self.count + take] = keys[:take]
            self.count += take
            rows, keys = rows[take:], keys[take:]
        if rows.shape[0] == 0:
            return
        better = keys < self.keys.max()
        if not better.any():
            return
        rows, keys = rows[better], keys[better]
        c = min(rows.shape[0], self.size)
        out_keys, out_idx = self.keys.topk(c)  # the c largest kept keys: the only ones that can be displaced
        union_keys = torch.cat([out_keys, keys])
        union_rows = torch.cat([self.items[out_idx], rows])
        best = union_keys.topk(c, largest=False).indices
        self.items[out_idx] = union_rows[best]
        self.keys[out_idx] = union_keys[best]

    def sample(self) -> Tensor:
        """The rows held, ``(min(size, seen), w)``."""
        return self.items[: self.count]


def random_projection(width: int, dim: int, seed: int = 0) -> Tensor | None:
    """A ``(w, p)`` Gaussian projection preserving distances in expectation (None when ``p`` is 0 or >= ``w``)."""
    if dim <= 0 or dim >= width:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randn(width, dim, generator=g) / math.sqrt(dim)


def greedy_coreset(x: Tensor, m: int, projection_dim: int = 128, seed: int = 0) -> Tensor:
    """Indices ``(m,)`` of a k-center greedy coreset of ``x`` ``(n, w)`` (PatchCore, Roth et al. 2022).

    Starting from a random row, repeatedly add the row farthest from everything chosen so far, so the memory
    covers the whole normal set, rare states included, instead of its dense middle only. Distances are taken on a
    random projection to ``projection_dim`` (cost ``n * m * p``).
    """
    n = x.shape[0]
    if m >= n:
        return torch.arange(n)
    proj = random_projection(x.shape[1], projection_dim, seed)
    z = x @ proj if proj is not None else x
    sq = z.pow(2).sum(1)
    g = torch.Generator().manual_seed(seed)
    chosen = torch.empty(m, dtype=torch.long)
    chosen[0] = int(torch.randint(n, (1,), generator=g))
    nearest = torch.full((n,), float("inf"))
    dist = torch.empty(n)
    for i in range(1, m):
        c = z[chosen[i - 1]]
        torch.addmv(sq, z, c, alpha=-2.0, out=dist)  # |z|^2 - 2 z.c; |c|^2 is the same for every row
        dist += c.dot(c)
        torch.minimum(nearest, dist, out=nearest)
        chosen[i] = nearest.argmax()
    return chosen


def kmeans(x: Tensor, m: int, iterations: int = 10, seed: int = 0, chunk: int = 4096) -> Tensor:
    """``m`` k-means centres ``(m, w)`` of ``x`` ``(n, w)`` (Lloyd, random rows as the start; empty clusters keep
    their centre)."""
    n = x.shape[0]
    if m >= n:
        return x.clone()
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(n, generator=g)[:m]].clone()
    for _ in range(iterations):
        assign = torch.cat([nearest_index(part, centres) for part in x.split(chunk)])
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=m).to(x.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def nearest_index(queries: Tensor, memory: Tensor) -> Tensor:
    """Index of the nearest memory row for each query: ``(Q, w) x (m, w) → (Q,)``."""
    return torch.addmm(memory.pow(2).sum(1), queries, memory.T, alpha=-2.0).argmin(1)


def reduce_memory(pool: Tensor, size: int, method: str = "coreset", projection_dim: int = 128,
                  seed: int = 0) -> Tensor:
    """Shrink ``pool`` ``(n, w)`` to at most ``size`` rows: ``coreset`` | ``kmeans`` | ``random``."""
    if method not in REDUCTIONS:
        raise ValueError(f"memory reduction must be one of {REDUCTIONS}, got {method!r}")
    if pool.shape[0] <= size:
        return pool.clone()
    if method == "coreset":
        return pool[greedy_coreset(pool, size, projection_dim, seed)].clone()
    if method == "kmeans":
        return kmeans(pool, size, seed=seed)
    return pool[torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))[:size]].clone()


def knn_distance(queries: Tensor, memory: Tensor, k: int = 3, chunk: int = 2048) -> Tensor:
    """Mean Euclidean distance of each query to its ``k`` nearest memory rows: ``(Q, w) x (m, w) → (Q,)``.

    Exact, chunked over the queries (``chunk x m`` distances at a time); ``k`` is capped at ``m``.
    """
    k = max(1, min(k, memory.shape[0]))
    msq = memory.pow(2).sum(1)
    mem_t = memory.T.contiguous()
    out = queries.new_empty(queries.shape[0])
    for start in range(0, queries.shape[0], chunk):
        q = queries[start:start + chunk]
        d2 = torch.addmm(msq, q, mem_t, alpha=-2.0).topk(k, dim=1, largest=False, sorted=False).values
        out[start:start + chunk] = (d2 + q.pow(2).sum(1, keepdim=True)).clamp_min(0.0).sqrt().mean(1)
    return out
