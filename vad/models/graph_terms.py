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

Levels wider than 64 are randomly projected to 64 dimensions first. Graphs are built over windows of
``window`` snippets (each snippet takes its neighbours from the window whose centre is nearest), all windows in
one batch, so the cost is linear in N. Shapes: ``n`` real snippets of one video, ``w`` a level's width, ``E`` =
k + 2c edges per snippet.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fusion import relationship_graph
from vad.models.memory import random_projection


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


def snippet_graph(levels: Sequence[Tensor], k: int, temporal: int, window: int = 256, sharpness: float = 4.0
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Neighbour lists of one video's snippets from its per-level vectors ``[(n, w_l), ...]``.

    Per level an RBF :func:`fusion.relationship_graph` over each window (all windows in one batch), raised to
    ``sharpness`` (``gamma = sharpness / mean squared distance``: 1 is fusion's own width, larger is sharper),
    averaged over the levels. Returns ``(index (n, E) long, weight (n, E) in [0, 1], mask (n, E) bool)``: the
    top-``k`` neighbours in that graph (self excluded) and the ``temporal`` previous and next snippets, each
    weighted by its graph value.
    """
    n = levels[0].shape[0]
    size = min(n, window)
    starts = torch.tensor(window_starts(n, window))
    rows = torch.arange(n)
    owner = (rows[:, None] + 0.5 - (starts[None] + size / 2)).abs().argmin(1)  # window whose centre is nearest
    local = rows - starts[owner]  # position inside that window
    windows = [torch.stack([x[s:s + size] for s in starts.tolist()]).float() for x in levels]  # [windows, size, w]
    graph = torch.stack([relationship_graph(x, kind="rbf").pow(sharpness) for x in windows]).mean(0)
    own_rows = graph[owner, local]  # shape = [n, size]: each snippet's row of its window's graph
    k_eff = max(0, min(k, size - 1))
    top_w, top_i = own_rows.scatter(1, local[:, None], -math.inf).topk(k_eff, dim=1)
    offsets = torch.cat([torch.arange(-temporal, 0), torch.arange(1, temporal + 1)])
    t_local = local[:, None] + offsets[None]  # shape = [n, 2c]
    t_ok = (t_local >= 0) & (t_local < size)
    t_local = t_local.clamp(0, size - 1)
    index = torch.cat([top_i, t_local], 1) + starts[owner][:, None]
    mask = torch.cat([torch.ones_like(top_i, dtype=torch.bool), t_ok], 1)
    weight = torch.cat([top_w, own_rows.gather(1, t_local)], 1).clamp_min(0.0) * mask
    return index, weight, mask


def neighborhood_distance(x: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    """``||x_i - sum_e w_ie x_{j_e} / sum_e w_ie||`` for ``x (n, w)``, neighbour lists ``(n, E)`` → ``(n,)``."""
    total = weight.sum(1, keepdim=True)
    mean = torch.zeros_like(x)
    for e in range(index.shape[1]):  # one edge slot at a time: (n, w) each, never (n, E, w)
        mean += weight[:, e, None] * x[index[:, e]]
    mean = mean / total.clamp_min(1e-12)
    mean = torch.where(total > 0, mean, torch.zeros_like(mean))
    return (x - mean).norm(dim=1)


def diffuse(scores: Tensor, index: Tensor, weight: Tensor, alpha: float, steps: int) -> Tensor:
    """Edge-preserving diffusion of per-snippet ``scores (n,)`` over the neighbour lists (see the module doc)."""
    s0, s = scores, scores
    total = weight.sum(1)
    for _ in range(steps):
        s = (s0 + alpha * (weight * s[index]).sum(1)) / (1.0 + alpha * total)
    return s


def level_vectors(levels: dict[str, Tensor], width: int = 64) -> list[Tensor]:
    """One vector per snippet per level: ``{level: (n, w) or (n, I, w)}`` (sets of frames or patches averaged)
    → ``[(n, min(w, width)), ...]``. Levels wider than ``width`` go through a fixed random projection (distances
    kept up to a few per cent, graph cost cut by ``w / width``); each is scaled by ``1 / sqrt(w)`` so every level
    weighs alike."""
    out = []
    for i, x in enumerate(levels.values()):
        v = (x.mean(1) if x.dim() == 3 else x).float()
        scale = math.sqrt(v.shape[-1])
        proj = random_projection(v.shape[-1], width, seed=i)
        out.append((v if proj is None else v @ proj.to(v.device)) / scale)
    return out
