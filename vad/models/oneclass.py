"""Training-free heads: ``arch="oneclass"`` (memory of normal footage) and ``arch="zeroshot"`` (CLIP prompts).

Both map a prepared :class:`FeatureBatch` to ``(logits (B, N), extras)`` like the trained heads, so
``AnomalyModel.forward``, checkpoints, ``Scorer``, ``vad score``, ``vad serve`` and ``vad eval`` work unchanged.

**One-class** (:class:`OneClassHead`, fitted by :func:`vad.engine.fit_normal.fit_normal` on normal videos only):
per feature level a bounded memory of normal vectors (registered buffers, saved in ``model.safetensors``):
clip ``(m, D)``, frame ``(m, D)`` (each sampled frame), patch ``(m, D)`` (each pooled patch), motion ``(m, M)``.
A snippet's distance at a level is the mean distance of its vector(s) to the k nearest memory vectors (the
largest over its frames or patches, as PatchCore takes the largest patch score), divided by the level's typical
distance on normal validation videos; the levels are averaged. With the graph terms on
(:mod:`vad.models.graph_terms`), the snippet's distance from its neighbourhood in the video's relationship graph is
added and the result is diffused over that graph. ``logit = 3 (s - q99) / (q99 - q50)`` with q50, q99 the
normal validation snippets' median and 99th percentile, so 0.5 falls near the top 1% of normal snippets.

**Zero-shot** (:class:`ZeroShotHead`): ``1 - p(normal)`` with ``p = softmax(cos(clip, prompts) / T)``,
diffused over the clip-level graph. It needs real CLIP weights: with a random backbone the prompt similarities
are noise.

Shapes: ``B`` videos, ``N`` snippets, ``I`` vectors per snippet at a level (1, F or P), ``w`` level width,
``K`` prompts, ``m`` memory size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from fusion import prompt_cosine
from vad.data.batch import FeatureBatch
from vad.models.config import ModelConfig
from vad.models.graph_terms import diffuse, level_vectors, neighborhood_distance, snippet_graph
from vad.models.memory import knn_distance
from vad.names import FEATURE_LEVELS

LOGIT_GAIN = 3.0  # logit at the normal median: -LOGIT_GAIN (sigmoid 0.05); at the normal 99th percentile: 0


def level_items(batch: FeatureBatch, level: str) -> Tensor | None:
    """The vectors of a level as sets: ``(B, N, I, w)`` (clip and motion: I = 1), or None if absent."""
    x = batch.level(level)
    if x is None:
        return None
    return x if x.dim() == 4 else x[:, :, None]


@dataclass
class OneClassParts:
    """The unscaled pieces of one-class scores of a batch (see :meth:`OneClassHead.parts`)."""

    levels: Tensor  # (L, B, N) k-NN distance per active level, before division by the level's scale
    level_ids: list[int]  # index into FEATURE_LEVELS of each of the L levels
    node_mask: Tensor  # (B, N) bool
    neighborhood: Tensor | None = None  # (B, N) distance from the graph neighbourhood, unscaled; None: terms off
    graphs: list[tuple[Tensor, Tensor]] = field(default_factory=list)  # per video: index, weight (n, E)


class OneClassHead(nn.Module):
    """k-NN distance to a memory of normal snippets, plus within-video graph terms (see the module doc)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        widths = {"clip": config.feature_dim, "frame": config.feature_dim, "patch": config.feature_dim,
                  "motion": max(1, config.motion_dim)}
        for level in FEATURE_LEVELS:
            self.register_buffer(f"memory_{level}", torch.zeros(0, widths[level]))  # filled by fit_normal
        self.register_buffer("level_scale", torch.ones(len(FEATURE_LEVELS)))  # typical normal distance per level
        self.register_buffer("neighborhood_scale", torch.ones(1))  # typical normal neighbourhood distance
        self.register_buffer("score_location", torch.zeros(1))  # q99 of normal validation scores
        self.register_buffer("score_spread", torch.ones(1))  # (q99 - q50) / LOGIT_GAIN

    def memory(self, level: str) -> Tensor:
        """The memory of one level, ``(m, w)`` (``m`` = 0 when the level was not fitted)."""
        return getattr(self, f"memory_{level}")

    def set_memory(self, level: str, vectors: Tensor) -> None:
        """Replace a level's memory with ``vectors`` ``(m, w)``."""
        setattr(self, f"memory_{level}", vectors.detach().float().contiguous().to(self.level_scale.device))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for level in FEATURE_LEVELS:  # memories are as large as fitting made them: take the stored shape
            key = f"{prefix}memory_{level}"
            if key in state_dict:
                self.set_memory(level, torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def active_levels(self, batch: FeatureBatch) -> list[str]:
        """Levels that the config reads, the batch holds and the memory covers."""
        return [lvl for lvl in FEATURE_LEVELS if self.config.uses(lvl) and batch.level(lvl) is not None
                and self.memory(lvl).shape[0] > 0]

    def parts(self, batch: FeatureBatch) -> OneClassParts:
        """The unscaled pieces of the score: per-level k-NN distances and, graph terms on, the graphs and the
        neighbourhood distances (the expensive part; :meth:`combine` is cheap)."""
        levels = self.active_levels(batch)
        if not levels:
            raise ValueError("one-class model: no feature level of the input has a fitted memory")
        dists = []
        for level in levels:
            items = level_items(batch, level)
            b, n, i, w = items.shape
            d = knn_distance(items.reshape(-1, w).float(), self.memory(level), self.config.memory.k)
            dists.append(d.view(b, n, i).amax(-1))
        parts = OneClassParts(torch.stack(dists), [FEATURE_LEVELS.index(lvl) for lvl in levels], batch.node_mask)
        g = self.config.graph_terms
        if g.enabled:
            parts.neighborhood = torch.zeros_like(parts.levels[0])
            for b in range(batch.node_mask.shape[0]):
                n = int(batch.node_mask[b].sum())
                vectors = level_vectors({lvl: batch.level(lvl)[b, :n] for lvl in levels})
                index, weight, _ = snippet_graph(vectors, g.neighbors, g.temporal_edges, g.window, g.sharpness)
                parts.graphs.append((index.to(parts.levels.device), weight.to(parts.levels.device)))
                parts.neighborhood[b, :n] = neighborhood_distance(torch.cat(vectors, 1), index.to(vectors[0].device),
                                                                  weight.to(vectors[0].device))
        return parts

    def combine(self, parts: OneClassParts) -> tuple[Tensor, dict[str, Tensor]]:
        """Unnormalised scores ``(B, N)`` from :meth:`parts` and the current scales, and the terms in ``extras``:
        ``knn`` ``(B, N)``, ``levels`` ``(L, B, N)``, ``neighborhood`` ``(B, N)`` (graph terms on)."""
        levels = parts.levels / self.level_scale[parts.level_ids][:, None, None]
        knn = levels.mean(0)
        extras = {"knn": knn, "levels": levels}
        if parts.neighborhood is None:
            return knn, extras
        g = self.config.graph_terms
        nbr = parts.neighborhood / self.neighborhood_scale
        own = knn + g.neighborhood_weight * nbr
        score = torch.zeros_like(own)
        for b, (index, weight) in enumerate(parts.graphs):
            n = index.shape[0]
            score[b, :n] = diffuse(own[b, :n], index, weight, g.diffusion, g.steps)
        extras["neighborhood"] = nbr
        return score, extras

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        raw, extras = self.combine(self.parts(batch))
        logits = (raw - self.score_location) / self.score_spread.clamp_min(1e-6)
        return logits.masked_fill(~batch.node_mask, 0.0), extras


class ZeroShotHead(nn.Module):
    """``1 - p(normal)`` from CLIP prompt similarities, diffused over the clip graph; no weights at all.

    ``batch.text`` ``(K, D)`` holds the prompt embeddings, the normal prompt first. Needs real CLIP weights.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        if batch.text is None or batch.text.shape[0] < 2:
            raise ValueError("zero-shot scoring needs prompt embeddings: a normal prompt and at least one anomaly")
        sims = prompt_cosine(batch.clip.float(), batch.text.float())  # (B, N, K)
        probs = torch.softmax(sims / self.config.zeroshot_temperature, dim=-1)
        score = 1.0 - probs[..., 0]
        g = self.config.graph_terms
        if g.enabled:
            score = score.clone()
            for b in range(score.shape[0]):
                n = int(batch.node_mask[b].sum())
                index, weight, _ = snippet_graph(level_vectors({"clip": batch.clip[b, :n]}), g.neighbors,
                                                 g.temporal_edges, g.window, g.sharpness)
                score[b, :n] = diffuse(score[b, :n], index, weight, g.diffusion, g.steps)
        logits = torch.logit(score.clamp(1e-6, 1 - 1e-6))
        return logits.masked_fill(~batch.node_mask, 0.0), {"prompt_probs": probs}
