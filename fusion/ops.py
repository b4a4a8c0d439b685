"""Pure graph math of LEGO fusion: relationship graphs, normalisation, powers, neighbour lists.

Shape legend: ``B`` batch (videos), ``N`` snippets (graph nodes), ``d`` feature width, ``H`` hop orders
(``P + 1``), ``k`` neighbours per node. Padded nodes (``node_mask`` False) get all-zero rows and columns in
every graph this module returns, so they never influence real nodes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusion.config import KERNELS, NORMALIZATIONS


def pair_mask(node_mask: Tensor | None, batch: int, num_nodes: int, device: torch.device) -> Tensor:
    """Node pairs (i, j) where both nodes are real.

    Args:
        node_mask: ``(B, N)`` bool, True = real node, or None (all real).
        batch: B, used when ``node_mask`` is None.
        num_nodes: N, used when ``node_mask`` is None.
        device: device of the result.

    Returns:
        ``(B, N, N)`` bool, ``m[b, i, j] = node_mask[b, i] & node_mask[b, j]``.
    """
    if node_mask is None:
        return torch.ones(batch, num_nodes, num_nodes, dtype=torch.bool, device=device)
    return node_mask[:, :, None] & node_mask[:, None, :]


def mask_graph(graph: Tensor, node_mask: Tensor | None) -> Tensor:
    """Zero the rows and columns of padded nodes: ``(B, N, N)`` graph, ``(B, N)`` bool mask (None: keep)."""
    if node_mask is None:
        return graph
    mask = node_mask.to(graph.dtype)
    return graph * mask[:, :, None] * mask[:, None, :]


def symmetrize(graph: Tensor) -> Tensor:
    """``(S + S^T) / 2`` over the last two dims: removes the round-off asymmetry of ``x @ x^T``."""
    return 0.5 * (graph + graph.transpose(-1, -2))


def unit_normalize(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale vectors along the last dim to unit L2 norm (zero vectors stay zero). Any shape ``(..., d)``."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def relationship_graph(
    x: Tensor,
    kind: str = "cosine",
    node_mask: Tensor | None = None,
    gamma: float | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Relationship graph R over the nodes of each sample: similarities between feature vectors.

    .. math::
        \\text{cosine: } R_{ij} = \\frac{x_i \\cdot x_j}{\\|x_i\\| \\|x_j\\|}, \\qquad
        \\text{rbf: } R_{ij} = \\exp(-\\gamma \\|x_i - x_j\\|^2),

    with ``gamma = 1 / mean_{i != j} ||x_i - x_j||^2`` (over real pairs of each sample) when not given. Both
    kernels are symmetric with unit diagonal on real nodes; rows and columns of padded nodes are zero.

    Args:
        x: ``(B, N, d)`` node features.
        kind: ``"cosine"`` or ``"rbf"``.
        node_mask: ``(B, N)`` bool, True = real node; None = all real.
        gamma: RBF inverse squared width; None = mean-distance heuristic per sample.
        eps: guard for zero norms and distances.

    Returns:
        ``(B, N, N)`` relationship graph R.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (B, N, d), got {tuple(x.shape)}")
    if kind not in KERNELS:
        raise ValueError(f"kind must be one of {KERNELS}, got {kind!r}")
    if kind == "cosine":
        xn = unit_normalize(x, eps)
        return mask_graph(symmetrize(xn @ xn.transpose(1, 2)), node_mask)
    sq = x.pow(2).sum(-1)  # shape = [B, N]
    dist2 = symmetrize(sq[:, :, None] + sq[:, None, :] - 2.0 * (x @ x.transpose(1, 2))).clamp_min(0.0)
    n = x.shape[1]
    dist2 = dist2 * (1.0 - torch.eye(n, dtype=x.dtype, device=x.device))  # exact zeros on the diagonal
    if gamma is None:
        pairs = pair_mask(node_mask, x.shape[0], n, x.device) & ~torch.eye(
            n, dtype=torch.bool, device=x.device
        )
        mean = (dist2 * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp_min(1)  # shape = [B]
        scale = 1.0 / mean.clamp_min(eps)
        return mask_graph(torch.exp(-scale[:, None, None] * dist2), node_mask)
    return mask_graph(torch.exp(-gamma * dist2), node_mask)


def normalize_graph(
    graph: Tensor, mode: str = "sym", node_mask: Tensor | None = None, eps: float = 1e-8
) -> Tensor:
    """Normalise a relationship graph so that all its powers stay bounded.

    - ``"sym"`` (default): clamp negatives to 0, then :math:`D^{-1/2} R_+ D^{-1/2}`, :math:`D = diag(R_+ 1)`.
      The result is symmetric and non-negative with spectrum in [-1, 1], so every power has spectral norm
      <= 1 and entries in [0, 1]; symmetry keeps R^p a p-hop *relationship* (R^p_ij = R^p_ji).
    - ``"row"``: clamp negatives, divide each row by its sum (random walk); powers are row-stochastic.
    - ``"softmax"``: row softmax over the real nodes; powers are row-stochastic, not symmetric.
    - ``"none"``: R unchanged (powers may grow or shrink geometrically).

    Args:
        graph: ``(B, N, N)`` relationship graph.
        mode: one of ``"sym"``, ``"row"``, ``"softmax"``, ``"none"``.
        node_mask: ``(B, N)`` bool; padded rows/columns of the result are zero.
        eps: guard for zero degrees (isolated or padded nodes).

    Returns:
        ``(B, N, N)`` normalised graph.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {mode!r}")
    graph = mask_graph(graph, node_mask)
    if mode == "none":
        return graph
    if mode == "softmax":
        valid = pair_mask(node_mask, graph.shape[0], graph.shape[1], graph.device)
        weights = torch.softmax(graph.masked_fill(~valid, float("-inf")), dim=-1)
        return torch.nan_to_num(weights, nan=0.0) * valid  # fully padded rows: softmax of -inf is nan -> 0
    positive = graph.clamp_min(0.0)
    degree = positive.sum(-1)  # shape = [B, N]
    if mode == "row":
        return positive / degree.clamp_min(eps)[:, :, None]
    inv_sqrt = torch.where(degree > eps, degree.clamp_min(eps).rsqrt(), torch.zeros_like(degree))
    return inv_sqrt[:, :, None] * positive * inv_sqrt[:, None, :]


def graph_powers(
    graph: Tensor,
    P: int,
    normalize: str = "sym",
    node_mask: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Graph power expansion :math:`[\\hat R^0, \\hat R^1, \\ldots, \\hat R^P]` of the normalised graph.

    :math:`\\hat R` = ``normalize_graph(graph, normalize)``; :math:`\\hat R^0 = I` on real nodes (zero on
    padded ones), :math:`\\hat R^{p} = \\hat R^{p-1} \\hat R` by repeated multiplication, so
    :math:`\\hat R^p_{ij}` carries the p-hop relations. With the default ``"sym"`` normalisation every power
    is symmetric with entries in [0, 1] (spectral norm <= 1), whatever N; see :func:`normalize_graph`.
    Cost O(P N^3) per sample.

    Args:
        graph: ``(B, N, N)`` relationship graph R.
        P: highest power (>= 0).
        normalize: normalisation applied before powering (see :func:`normalize_graph`).
        node_mask: ``(B, N)`` bool, True = real node; None = all real.
        eps: guard for zero degrees.

    Returns:
        ``(B, P + 1, N, N)`` stacked powers, index p along dim 1.
    """
    if graph.dim() != 3 or graph.shape[1] != graph.shape[2]:
        raise ValueError(f"graph must be (B, N, N), got {tuple(graph.shape)}")
    if P < 0:
        raise ValueError(f"P must be >= 0, got {P}")
    b, n, _ = graph.shape
    identity = torch.eye(n, dtype=graph.dtype, device=graph.device).expand(b, n, n)
    powers = [mask_graph(identity, node_mask)]
    if P > 0:
        base = normalize_graph(graph, normalize, node_mask, eps)
        powers.append(base)
        for _ in range(P - 1):
            powers.append(powers[-1] @ base)
    return torch.stack(powers, dim=1)


def scale_powers_by_size(powers: Tensor, node_mask: Tensor | None = None) -> Tensor:
    """Multiply powers p >= 1 by the number of real nodes n of each sample; R^0 = I is left as is.

    A normalised power of a dense graph has entries of order 1/n (its rows are spread over n nodes), so the
    Hadamard product of two powers would be O(1/n^2) against O(1) for I * I. Scaling by n makes every Hadamard
    term O(1) and the same for a 200-node window and a 200-node video, so the learned A weighs hop orders, not
    sizes.

    Args:
        powers: ``(B, H, N, N)`` powers as returned by :func:`graph_powers`.
        node_mask: ``(B, N)`` bool; None = all N nodes real.

    Returns:
        ``(B, H, N, N)`` scaled powers.
    """
    b, h, n, _ = powers.shape
    if node_mask is None:
        count = torch.full((b,), float(n), dtype=powers.dtype, device=powers.device)
    else:
        count = node_mask.sum(-1).to(powers.dtype)
    scale = torch.ones(b, h, dtype=powers.dtype, device=powers.device)
    scale[:, 1:] = count[:, None]
    return powers * scale[:, :, None, None]


def row_l1_normalize(graph: Tensor, eps: float = 1e-8) -> Tensor:
    """Divide each row by its L1 norm: :math:`\\tilde G_{ij} = G_{ij} / \\sum_j |G_{ij}|` (zero rows stay 0).

    Keeps signs; the result has infinity-norm <= 1, so ``G X`` is a (signed) weighted average of neighbours.
    Shape ``(B, N, N)`` in and out.
    """
    return graph / graph.abs().sum(-1, keepdim=True).clamp_min(eps)


def topk_neighbors(graph: Tensor, k: int, node_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The k strongest neighbours of each node in a graph, self excluded, as a sparse neighbour list.

    Args:
        graph: ``(B, N, N)`` graph (larger = stronger).
        k: neighbours per node; when fewer than k real neighbours exist the rest are padding.
        node_mask: ``(B, N)`` bool, True = real node; padded nodes have no neighbours and are no neighbour.

    Returns:
        ``(neighbors, neighbor_mask, neighbor_weights)``, each ``(B, N, k)``: long indices into N (0 where
        padding), bool True = real edge, and the graph value of the edge (0 where padding).
    """
    b, n, _ = graph.shape
    valid = pair_mask(node_mask, b, n, graph.device) & ~torch.eye(n, dtype=torch.bool, device=graph.device)
    k_eff = min(k, n - 1) if n > 1 else 0
    neighbors = torch.zeros(b, n, k, dtype=torch.long, device=graph.device)
    neighbor_mask = torch.zeros(b, n, k, dtype=torch.bool, device=graph.device)
    weights = torch.zeros(b, n, k, dtype=graph.dtype, device=graph.device)
    if k_eff == 0:
        return neighbors, neighbor_mask, weights
    scores = graph.masked_fill(~valid, float("-inf"))
    values, index = scores.topk(k_eff, dim=-1)  # shape = [B, N, k_eff]
    found = torch.isfinite(values)
    neighbors[:, :, :k_eff] = torch.where(found, index, torch.zeros_like(index))
    neighbor_mask[:, :, :k_eff] = found
    weights[:, :, :k_eff] = torch.where(found, values, torch.zeros_like(values))
    return neighbors, neighbor_mask, weights


RELATION_STATS = ("mean", "std", "max", "topk_mean", "q10", "q50", "q90")  # per-node read-outs of a graph row


def relation_readout(graph: Tensor, node_mask: Tensor | None = None, k: int = 4) -> Tensor:
    """N-independent summary of each node's row of a graph: how it relates to every other node.

    LEGO scores a node from its row of the fused graph (relationship space); a row has N entries, so for any
    N the row is summarised by statistics of its off-diagonal real entries: mean, std, max, the mean of the
    ``k`` strongest relations and the 10/50/90 % quantiles (names in :data:`RELATION_STATS`). An isolated
    node (an anomaly) has weak relations to all others; a node of a recurring pattern has strong ones.

    Args:
        graph: ``(B, N, N)`` graph, e.g. the fused G.
        node_mask: ``(B, N)`` bool, True = real node; None = all real.
        k: relations averaged by ``topk_mean`` (clamped to the real neighbours available).

    Returns:
        ``(B, N, 7)`` statistics; zero rows for padded nodes and for nodes without any other real node.
    """
    b, n, _ = graph.shape
    mask = torch.ones(b, n, dtype=torch.bool, device=graph.device) if node_mask is None else node_mask.bool()
    valid = mask[:, :, None] & mask[:, None, :] & ~torch.eye(n, dtype=torch.bool, device=graph.device)
    count = valid.sum(-1, keepdim=True).clamp(min=1).to(graph.dtype)  # shape = [B, N, 1]
    filled = graph.masked_fill(~valid, 0.0)
    mean = filled.sum(-1, keepdim=True) / count
    std = ((filled - mean).masked_fill(~valid, 0.0).pow(2).sum(-1, keepdim=True) / count).clamp(min=0).sqrt()
    ranked = graph.masked_fill(~valid, float("-inf")).sort(dim=-1, descending=True).values  # shape = [B, N, N]
    finite = torch.isfinite(ranked)
    ranked = ranked.masked_fill(~finite, 0.0)
    kk = count.clamp(max=max(1, min(k, n)))
    topk = (ranked[..., : max(1, min(k, n))] * finite[..., : max(1, min(k, n))]).sum(-1, keepdim=True) / kk
    quantiles = []
    for q in (0.1, 0.5, 0.9):  # position in the descending order of the real entries
        pos = ((1.0 - q) * (count - 1)).round().long().clamp(min=0, max=n - 1)
        quantiles.append(ranked.gather(-1, pos))
    stats = torch.cat([mean, std, ranked[..., :1], topk, *quantiles], dim=-1)
    has_other = valid.any(-1, keepdim=True)
    return stats * has_other
