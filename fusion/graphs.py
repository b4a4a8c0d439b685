"""Relationship graphs over snippets for each VAD feature level (clip, frame, patch, text).

Every builder returns a ``(B, N, N)`` graph over the N snippets of each video, symmetric, with zero rows and
columns for padded snippets. Shape legend: ``B`` videos, ``N`` snippets, ``F`` frames per snippet, ``P``
patches per snippet, ``K`` text prompts, ``D`` embedding width.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusion.config import SET_AGGREGATES
from fusion.ops import mask_graph, relationship_graph, symmetrize, unit_normalize


def clip_graph(
    x: Tensor, node_mask: Tensor | None = None, kind: str = "cosine", gamma: float | None = None
) -> Tensor:
    """Clip-level graph: kernel similarity of the snippet embeddings.

    Args:
        x: ``(B, N, D)`` one embedding per snippet.
        node_mask: ``(B, N)`` bool, True = real snippet.
        kind: ``"cosine"`` or ``"rbf"`` (see :func:`fusion.relationship_graph`).
        gamma: RBF width; None = mean-distance heuristic.

    Returns:
        ``(B, N, N)`` graph.
    """
    return relationship_graph(x, kind=kind, node_mask=node_mask, gamma=gamma)


def set_graph(
    x: Tensor, node_mask: Tensor | None = None, aggregate: str = "mean", eps: float = 1e-8
) -> Tensor:
    """Graph over snippets that each hold a set of S embeddings (frames or patches), from their similarities.

    With :math:`c^{st}_{ij} = \\cos(x_{is}, x_{jt})`:

    - ``"mean"``: :math:`R_{ij} = \\frac{1}{S^2} \\sum_{s,t} c^{st}_{ij}` (mean element-to-element
      similarity), computed as the dot product of the mean unit vectors in O(N^2 D).
    - ``"aligned"``: :math:`R_{ij} = \\frac{1}{S} \\sum_s c^{ss}_{ij}` (position-wise: frame s with frame s,
      patch cell s with cell s), i.e. the cosine of the flattened unit-normalised sets; unit diagonal;
      O(N^2 S D).
    - ``"chamfer"``: :math:`R_{ij} = \\frac12 (\\frac1S \\sum_s \\max_t c^{st}_{ij} + \\frac1S \\sum_t \\max_s
      c^{st}_{ij})` (symmetric mean best match); O(N^2 S^2 D) time and O(N^2 S^2) memory.

    Args:
        x: ``(B, N, S, D)`` S embeddings per snippet.
        node_mask: ``(B, N)`` bool, True = real snippet.
        aggregate: ``"mean"``, ``"aligned"`` or ``"chamfer"``.
        eps: guard for zero norms.

    Returns:
        ``(B, N, N)`` symmetric graph, padded rows/columns zero.
    """
    if x.dim() != 4:
        raise ValueError(f"set features must be (B, N, S, D), got {tuple(x.shape)}")
    if aggregate not in SET_AGGREGATES:
        raise ValueError(f"aggregate must be one of {SET_AGGREGATES}, got {aggregate!r}")
    xn = unit_normalize(x, eps)
    b, n, s, d = xn.shape
    if aggregate == "chamfer":
        sim = torch.einsum("bisd,bjtd->bijst", xn, xn)  # shape = [B, N, N, S, S]
        best = sim.amax(dim=-1).mean(dim=-1)  # shape = [B, N, N]: mean over s of max over t
        return mask_graph(symmetrize(best), node_mask)
    if aggregate == "mean":
        summary = xn.mean(dim=2)  # shape = [B, N, D]
    else:
        summary = xn.reshape(b, n, s * d) / s**0.5  # shape = [B, N, S*D]
    return mask_graph(symmetrize(summary @ summary.transpose(1, 2)), node_mask)


def frame_graph(x: Tensor, node_mask: Tensor | None = None, aggregate: str = "mean") -> Tensor:
    """Frame-level graph: frame-to-frame similarities aggregated to snippet pairs (see :func:`set_graph`).

    Args:
        x: ``(B, N, F, D)`` embeddings of F frames sampled in each snippet.
        node_mask: ``(B, N)`` bool, True = real snippet.
        aggregate: default ``"mean"`` (mean frame-to-frame cosine); ``"aligned"`` compares frame f with frame
            f (sensitive to motion order); ``"chamfer"`` is the mean best match.

    Returns:
        ``(B, N, N)`` graph.
    """
    return set_graph(x, node_mask, aggregate)


def patch_graph(x: Tensor, node_mask: Tensor | None = None, aggregate: str = "aligned") -> Tensor:
    """Patch-level graph: similarity of the snippets' pooled patch grids (see :func:`set_graph`).

    Args:
        x: ``(B, N, P, D)`` P pooled patch tokens of each snippet's key frame.
        node_mask: ``(B, N)`` bool, True = real snippet.
        aggregate: default ``"aligned"`` (cosine of the flattened, per-cell normalised grids: same place, same
            content); ``"chamfer"`` tolerates objects that moved; ``"mean"`` ignores layout.

    Returns:
        ``(B, N, N)`` graph.
    """
    return set_graph(x, node_mask, aggregate)


def prompt_cosine(x: Tensor, text: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarity of each snippet to each prompt: the one definition behind the text graph, a model's text
    level and zero-shot scores.

    Args:
        x: ``(B, N, D)`` snippet embeddings (CLIP image space).
        text: ``(K, D)`` prompt embeddings shared by the batch, or ``(B, K, D)`` per video.
        eps: guard for zero norms.

    Returns:
        ``(B, N, K)`` cosines in [-1, 1].
    """
    if text.dim() == 2:
        text = text.unsqueeze(0).expand(x.shape[0], -1, -1)
    if x.dim() != 3 or text.dim() != 3 or text.shape[0] != x.shape[0] or text.shape[2] != x.shape[2]:
        raise ValueError(f"text must be (K, D) or (B, K, D) and x (B, N, D) with the same D, got {tuple(text.shape)} "
                         f"and {tuple(x.shape)}")
    return unit_normalize(x, eps) @ unit_normalize(text, eps).transpose(1, 2)  # shape = [B, N, K]


def text_affinity(x: Tensor, text: Tensor, temperature: float = 0.01, eps: float = 1e-8) -> Tensor:
    """Each snippet's affinity profile over the K prompts: :math:`a_i = softmax_k(\\cos(x_i, t_k) / \\tau)`.

    Args:
        x: ``(B, N, D)`` snippet embeddings (CLIP image space).
        text: ``(K, D)`` prompt embeddings shared by the batch, or ``(B, K, D)`` per video.
        temperature: :math:`\\tau`; CLIP's learned logit scale is 100, i.e. 0.01.
        eps: guard for zero norms.

    Returns:
        ``(B, N, K)`` rows on the probability simplex.
    """
    return torch.softmax(prompt_cosine(x, text, eps) / temperature, dim=-1)


def text_graph(
    x: Tensor,
    text: Tensor,
    node_mask: Tensor | None = None,
    temperature: float = 0.01,
    kind: str = "cosine",
    gamma: float | None = None,
) -> Tensor:
    """Text-level graph: snippets are related when they relate to the prompts alike.

    :math:`R_{ij} = k(a_i, a_j)` with :math:`a_i` the affinity profile of :func:`text_affinity` and k the
    kernel (cosine by default: profiles are non-negative, so R is in [0, 1]).

    Args:
        x: ``(B, N, D)`` snippet embeddings in the text's embedding space.
        text: ``(K, D)`` or ``(B, K, D)`` prompt embeddings (normal and anomaly classes).
        node_mask: ``(B, N)`` bool, True = real snippet.
        temperature: softmax temperature of the profile.
        kind: kernel between profiles, ``"cosine"`` or ``"rbf"``.
        gamma: RBF width; None = mean-distance heuristic.

    Returns:
        ``(B, N, N)`` graph.
    """
    return relationship_graph(
        text_affinity(x, text, temperature), kind=kind, node_mask=node_mask, gamma=gamma
    )
