"""Within-video graph terms for training-free scores (one-class k-NN distances, zero-shot prompt probabilities).

Over the snippets of one video, a relationship graph G is built per feature level with
:func:`fusion.relationship_graph` (RBF kernel, width from the video's own mean distance) and averaged over the
levels (LEGO's fused graph with uniform weights and one hop). Each snippet keeps its top-k neighbours in G plus
its c temporal neighbours, each edge weighted by G. Two terms read that graph:

* :func:`neighborhood_distance`: how far a snippet lies from the G-weighted mean of its neighbours: a local
  oddity that the memory of normal footage cannot see (a snippet unlike the scene around it).
* :func:`diffuse`: ``s_i <- (s0_i + a sum_j G_ij s_j) / (1 + a sum_j G_ij)``, a few steps: snippets that look
  alike share their evidence, so an event's snippets score as a whole, while a snippet unlike all its neighbours
  (small G_ij) keeps its own score (edge-preserving, unlike plain temporal smoothing).

Graphs are built over windows of ``window`` snippets (each snippet takes its neighbours from the window whose
centre is nearest), so the cost is linear in N. Shapes: ``n`` real snippets of one video, ``w`` a level's
width, ``E`` = k + 2c edges per snippet.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fusion import relationship_graph


def window_starts(n: int, window: int) -> list[int]:
    """Starts of the windows covering ``n`` snippets: width ``window``, step ``window // 2``, the last one flush
    with the end."""
    if n <= window:
        return [0]
    step = max(1, window // 2)
    starts = list(range(0, n - window + 1, step))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def rbf_graph(x: Tensor, sharpness: float = 1.0) -> Tensor:
    """``(n, w)`` → ``(n, n)`` RBF relationship graph (:func:`fusion.relationship_graph`) with
    ``gamma = sharpness / mean_{i != j} ||x_i - x_j||^2``: 1 is fusion's own width heuristic, larger is sharper."""
    n = x.shape[0]
    if n < 2:
        return torch.ones(n, n)
    mean = torch.cdist(x, x).pow(2).sum() / (n * (n - 1))
    return relationship_graph(x[None].float(), kind="rbf", gamma=sharpness / max(float(mean), 1e-12))[0]


def snippet_graph(levels: Sequence[Tensor], k: int, temporal: int, window: int = 256, sharpness: float = 1.0
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Neighbour lists of one video's snippets from its per-level vectors ``[(n, w_l), ...]``.

    Returns ``(index (n, E) long, weight (n, E) in [0, 1], mask (n, E) bool)``: the top-``k`` neighbours in the
    level-averaged RBF relationship graph (self excluded) and the ``temporal`` previous and next snippets, each
    weighted by its graph value.
    """
    n = levels[0].shape[0]
    k_eff = max(0, min(k, min(n, window) - 1))
    width = k_eff + 2 * temporal
    index = torch.zeros(n, width, dtype=torch.long)
    weight = torch.zeros(n, width)
    mask = torch.zeros(n, width, dtype=torch.bool)
    starts = window_starts(n, window)
    centres = torch.tensor([s + min(window, n) / 2 for s in starts])
    owner = (torch.arange(n)[:, None] + 0.5 - centres[None]).abs().argmin(1)  # shape = [n]
    offsets = torch.cat([torch.arange(-temporal, 0), torch.arange(1, temporal + 1)])
    for w_id, start in enumerate(starts):
        stop = min(n, start + window)
        graph = torch.stack([rbf_graph(x[start:stop].float(), sharpness) for x in levels]).mean(0)
        size = stop - start
        local = torch.arange(size)
        rows = (owner[start:stop] == w_id).nonzero().squeeze(1)
        if k_eff:
            masked = graph.clone()
            masked[local, local] = -math.inf
            top_w, top_i = masked[rows].topk(k_eff, dim=1)
        else:
            top_w, top_i = graph.new_zeros(len(rows), 0), torch.zeros(len(rows), 0, dtype=torch.long)
        t_idx = rows[:, None] + offsets[None]  # shape = [r, 2c]
        t_ok = (t_idx >= 0) & (t_idx < size)
        t_idx = t_idx.clamp(0, size - 1)
        t_w = graph[rows[:, None], t_idx]
        index[start + rows] = torch.cat([top_i, t_idx], 1) + start
        weight[start + rows] = torch.cat([top_w, t_w], 1).clamp_min(0.0)
        mask[start + rows] = torch.cat([torch.ones_like(top_i, dtype=torch.bool), t_ok], 1)
    return index, weight * mask, mask


def neighborhood_distance(x: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    """``||x_i - sum_e w_ie x_{j_e} / sum_e w_ie||`` for ``x (n, w)``, neighbour lists ``(n, E)`` → ``(n,)``."""
    total = weight.sum(1, keepdim=True)
    mean = (weight[..., None] * x[index]).sum(1) / total.clamp_min(1e-12)
    mean = torch.where(total > 0, mean, torch.zeros_like(mean))
    return (x - mean).norm(dim=1)


def diffuse(scores: Tensor, index: Tensor, weight: Tensor, alpha: float, steps: int) -> Tensor:
    """Edge-preserving diffusion of per-snippet ``scores (n,)`` over the neighbour lists (see the module doc)."""
    s0, s = scores, scores
    total = weight.sum(1)
    for _ in range(steps):
        s = (s0 + alpha * (weight * s[index]).sum(1)) / (1.0 + alpha * total)
    return s


def level_vectors(levels: dict[str, Tensor]) -> list[Tensor]:
    """One vector per snippet per level, each scaled by ``1 / sqrt(width)`` so that every level weighs alike:
    ``{level: (n, w) or (n, I, w)}`` (sets of frames or patches are averaged) → ``[(n, w), ...]``."""
    out = []
    for x in levels.values():
        v = x.mean(1) if x.dim() == 3 else x
        out.append(v.float() / math.sqrt(v.shape[-1]))
    return out
