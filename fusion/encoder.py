"""``LEGOGraphEncoder``: multi-level features -> fused snippet graph G -> node representations, neighbours.

This is the entry point the anomaly model calls. Shape legend: ``B`` videos, ``N`` snippets, ``F`` frames
per snippet, ``P`` patches per snippet, ``K`` prompts, ``D`` input width, ``D_out`` output width, ``k``
neighbours per node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fusion.config import LEGOConfig
from fusion.graphs import clip_graph, frame_graph, patch_graph, text_graph
from fusion.lego import LEGOFusion
from fusion.ops import (
    RELATION_STATS,
    graph_powers,
    relation_readout,
    row_l1_normalize,
    scale_powers_by_size,
    topk_neighbors,
)
from fusion.windows import gather_windows, sample_lengths, window_layout

NODE_DIMS = {"clip": 3, "frame": 4, "patch": 4, "motion": 3}  # per-snippet levels: (B, N, D), (B, N, S, D), (B, N, M)


@dataclass
class LEGOOutput:
    """What :class:`LEGOGraphEncoder` returns for a batch of B videos of (padded) length N."""

    nodes: Tensor  # (B, N, D_out) H = rownorm(G) X W + b; zero for padded nodes
    neighbors: Tensor  # (B, N, k) long, global indices of each node's top-k neighbours in G, self excluded
    neighbor_mask: Tensor  # (B, N, k) bool, True = real edge (False: padding, or fewer than k neighbours)
    neighbor_weights: Tensor  # (B, N, k) G value of each edge, 0 where neighbor_mask is False
    # (B, N) row sums of G over real nodes (windowed: of the node's own window); 0 when padded
    degrees: Tensor  # (B, N) row sums of G (windowed: in the node's own window); 0 for padded nodes
    relations: Tensor  # (B, N, R) relationship-space read-out of each node's row of G (fusion.relation_readout)
    node_mask: Tensor  # (B, N) bool, True = real node (all True when no mask was given)
    fused: Tensor | None  # (B, N, N) dense fused graph G, or None in windowed mode
    pair: int | None  # index into LEGOFusion.pairs of the pair used (training), None = mean over pairs
    windowed: bool  # True when the windowed (linear-cost) path was taken


@dataclass
class _Block:
    """The graph outputs of one batch (videos or windows): the first fields of :class:`LEGOOutput`."""

    nodes: Tensor
    fused: Tensor | None
    neighbors: Tensor
    neighbor_mask: Tensor
    neighbor_weights: Tensor
    degrees: Tensor
    relations: Tensor


@dataclass
class _Batch:
    """The per-node inputs of one batch of graphs (whole videos, or windows cut out of them)."""

    node_levels: dict[str, Tensor]  # level -> (B', N', ...) per-node features (text: the snippet embeddings)
    prompts: Tensor | None  # (K, D) shared or (B', K, D) prompt embeddings, None without a text level
    projected: list[Tensor]  # per encoder, (B', N', D_out) X W: the features its G propagates
    node_mask: Tensor  # (B', N') bool, True = real node

    def window(self, sample: Tensor, start: Tensor, width: int) -> _Batch:
        """Windows ``[start[c], start[c] + width)`` of samples ``sample[c]``, as a batch of C graphs."""
        prompts = (
            self.prompts[sample] if self.prompts is not None and self.prompts.dim() == 3 else self.prompts
        )
        return _Batch(
            node_levels={
                name: gather_windows(feat, sample, start, width) for name, feat in self.node_levels.items()
            },
            prompts=prompts,
            projected=[gather_windows(x, sample, start, width) for x in self.projected],
            node_mask=gather_windows(self.node_mask, sample, start, width),
        )


class LEGOGraphEncoder(nn.Module):
    """One relationship graph per level, expanded to powers and fused by LEGO; G propagates node features.

    .. math::
        R_m &= \\text{graph}_m(\\text{level}_m), \\quad
            \\hat R_m^p = \\text{normalize}(R_m)^p \\ (p \\le \\max(P,Q)) \\\\
        G &= \\text{LEGOFusion}(\\{n \\hat R_m^p\\}) \\quad
            (n\\text{ = real nodes; see scale\\_by\\_size}) \\\\
        H &= \\tilde G X W + b, \\quad \\tilde G_{ij} = G_{ij} / \\textstyle\\sum_j |G_{ij}|

    The parameters (A per pair, W, b) do not depend on N, so any video length works. The L1 row normalisation
    makes H a signed weighted average of the node's relations whatever N and the scale of A.

    **Levels.** ``levels`` maps level name to features: ``"clip"`` ``(B, N, D)``, ``"frame"`` ``(B, N, F,
    D)``, ``"patch"`` ``(B, N, P, D)``, ``"motion"`` ``(B, N, M)`` (any width M: e.g. an optical-flow summary),
    ``"text"`` the prompt embeddings ``(K, D)`` (shared) or ``(B, K, D)``.
    The text graph compares the snippets' prompt-affinity profiles, where the snippet embeddings are
    ``levels["clip"]`` when given, else ``x`` (both must live in the prompts' CLIP space). All present levels
    that the config lists are fused (mean over their pairs at inference); a config with one level fuses powers
    of that graph.

    **Long videos.** When ``config.mode`` is ``"windowed"``, or ``"auto"`` and N > ``window_size``, the
    graphs, powers, fusion, propagation and top-k are computed densely inside overlapping windows of
    ``window_size`` nodes (``window_batch`` windows at a time) and each node takes its outputs from the window
    where it is most central (see :mod:`fusion.windows`); neighbour indices are global. Cost O(N W (D + P W) W
    / stride): linear in N. A video with N <= window_size is a single window, which is exactly the dense
    computation.

    Shapes:
        x: ``(B, N, D)`` node features to propagate; node_mask: ``(B, N)`` bool; output: :class:`LEGOOutput`.
    """

    def __init__(self, config: LEGOConfig) -> None:
        super().__init__()
        self.config = config
        self.fusion = LEGOFusion(config)
        self.proj = nn.Linear(config.in_dim, config.out_dim, bias=False)
        self.bias = nn.Parameter(torch.empty(config.out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset A (see :meth:`LEGOFusion.reset_parameters`), W (PyTorch's Linear init) and b = 0."""
        self.fusion.reset_parameters()
        self.proj.reset_parameters()
        nn.init.zeros_(self.bias)

    def forward(self, levels: Mapping[str, Tensor], x: Tensor, node_mask: Tensor | None = None) -> LEGOOutput:
        """Encode a batch of videos.

        Args:
            levels: level name -> features (see the class docstring); names must be in ``config.levels``.
            x: ``(B, N, D)`` node features propagated over G.
            node_mask: ``(B, N)`` bool, True = real snippet; None = all real.

        Returns:
            :class:`LEGOOutput`.
        """
        return encode_members([self], levels, [x], node_mask)[0]

    def _split_levels(
        self, levels: Mapping[str, Tensor], x: Tensor
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """Check the levels and return (per-node tensors to window, prompt embeddings or None)."""
        if x.dim() != 3 or x.shape[2] != self.config.in_dim:
            raise ValueError(f"x must be (B, N, D={self.config.in_dim}), got {tuple(x.shape)}")
        unknown = [name for name in levels if name not in self.config.levels]
        if unknown or not levels:
            raise ValueError(f"levels {sorted(levels)} must be a non-empty subset of {self.config.levels}")
        node_levels: dict[str, Tensor] = {}
        for name, feat in levels.items():
            if name == "text":
                node_levels[name] = levels.get("clip", x)
                continue
            if feat.dim() != NODE_DIMS[name] or feat.shape[:2] != x.shape[:2]:
                raise ValueError(
                    f"level {name!r} must have {NODE_DIMS[name]} dims starting with "
                    f"(B, N)={tuple(x.shape[:2])}, got {tuple(feat.shape)}"
                )
            node_levels[name] = feat
        return node_levels, levels.get("text")

    def level_graph(
        self, name: str, feat: Tensor, prompts: Tensor | None, node_mask: Tensor | None
    ) -> Tensor:
        """The ``(B, N, N)`` graph of one level (``feat`` as in ``levels``; for text: snippet embeddings)."""
        cfg = self.config
        if name in ("clip", "motion"):  # one vector per snippet: kernel similarity
            return clip_graph(feat, node_mask, kind=cfg.kernel, gamma=cfg.rbf_gamma)
        if name == "frame":
            return frame_graph(feat, node_mask, aggregate=cfg.frame_aggregate)
        if name == "patch":
            return patch_graph(feat, node_mask, aggregate=cfg.patch_aggregate)
        return text_graph(
            feat, prompts, node_mask, cfg.text_temperature, kind=cfg.kernel, gamma=cfg.rbf_gamma
        )

    def _powers(self, batch: _Batch) -> dict[str, Tensor]:
        """Level -> ``(B', H, N', N')`` graph powers of whole videos or windows (no learned weights in them)."""
        cfg, node_mask, powers = self.config, batch.node_mask, {}
        for name, feat in batch.node_levels.items():
            graph = self.level_graph(name, feat, batch.prompts, node_mask)
            stack = graph_powers(graph, cfg.max_power, cfg.normalize, node_mask, cfg.eps)
            powers[name] = scale_powers_by_size(stack, node_mask) if cfg.scale_by_size else stack
        return powers

    def _fuse(self, powers: Mapping[str, Tensor], projected: Tensor, node_mask: Tensor, pair: int | None) -> _Block:
        """This encoder's fusion of ``powers``, propagation of ``projected`` ``(B', N', D_out)`` and top-k."""
        cfg = self.config
        fused = self.fusion(powers, pair)  # shape = [B', N', N']
        if cfg.propagate:
            nodes = (row_l1_normalize(fused, cfg.eps) @ projected + self.bias) * node_mask[:, :, None]
        else:  # relation read-out only: skip the (N, N) x (N, D_out) product
            nodes = torch.zeros_like(projected)
        neighbors, neighbor_mask, neighbor_weights = topk_neighbors(fused, cfg.top_k, node_mask)
        relations = relation_readout(fused, node_mask, cfg.relation_k)
        return _Block(nodes, fused, neighbors, neighbor_mask, neighbor_weights, fused.sum(-1), relations)

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"levels={cfg.levels}, in_dim={cfg.in_dim}, out_dim={cfg.out_dim}, P={cfg.P}, Q={cfg.Q}, "
            f"kernel={cfg.kernel}, normalize={cfg.normalize}, top_k={cfg.top_k}, mode={cfg.mode}, "
            f"window={cfg.window_size}/{cfg.window_overlap}"
        )


def encode_members(encoders: Sequence[LEGOGraphEncoder], levels: Mapping[str, Tensor], xs: Sequence[Tensor],
                   node_mask: Tensor | None = None) -> list[LEGOOutput]:
    """:meth:`LEGOGraphEncoder.forward` of K encoders of one config (an ensemble's members) on the same levels.

    The level graphs and their powers hold no learned weights, so they are built once per batch (or window) and
    each encoder fuses them with its own A and propagates its own ``xs[k]`` ``(B, N, D)``: the same outputs as K
    separate forwards, for about one graph build instead of K. (A text graph built from ``x`` itself, when there
    is no clip level, differs per encoder: then each encoder runs alone.) With pair sampling in training every
    encoder draws its pair here, before the caller's later random draws (dropout), not interleaved with them.
    """
    first = encoders[0]
    if any(e.config != first.config for e in encoders) or len(xs) != len(encoders):
        raise ValueError("encode_members takes encoders of one config and one x per encoder")
    if len(encoders) > 1 and "text" in levels and "clip" not in levels:
        return [encode_members([e], levels, [x], node_mask)[0] for e, x in zip(encoders, xs)]
    node_levels, prompts = first._split_levels(levels, xs[0])
    for e, x in zip(encoders[1:], xs[1:]):
        e._split_levels(levels, x)  # the same checks for every x
    b, n, _ = xs[0].shape
    mask = torch.ones(b, n, dtype=torch.bool, device=xs[0].device) if node_mask is None else node_mask.bool()
    pairs = [e.fusion.draw_pair(levels.keys()) for e in encoders]
    batch = _Batch(node_levels, prompts, [e.proj(x) for e, x in zip(encoders, xs)], mask)  # X W per encoder
    cfg = first.config
    windowed = cfg.mode == "windowed" or (cfg.mode == "auto" and n > cfg.window_size)
    blocks = (_windowed if windowed else _dense)(encoders, batch, pairs)
    return [LEGOOutput(**vars(block), node_mask=mask, pair=pair, windowed=windowed)
            for block, pair in zip(blocks, pairs)]


def _dense(encoders: Sequence[LEGOGraphEncoder], batch: _Batch, pairs: Sequence[int | None]) -> list[_Block]:
    """Graphs and powers once, then each encoder's fusion, propagation and top-k, on whole ``(B', N', ...)``
    videos or windows."""
    powers = encoders[0]._powers(batch)
    return [e._fuse(powers, x, batch.node_mask, pair) for e, x, pair in zip(encoders, batch.projected, pairs)]


def _windowed(encoders: Sequence[LEGOGraphEncoder], batch: _Batch, pairs: Sequence[int | None]) -> list[_Block]:
    """Dense computation in overlapping windows; each node keeps the outputs of its most central one."""
    cfg = encoders[0].config
    node_mask = batch.node_mask
    b, n = node_mask.shape
    layout = window_layout(sample_lengths(node_mask, b, n, node_mask.device), n, cfg.window_size, cfg.window_overlap)
    used = torch.arange(layout.starts.shape[1], device=node_mask.device)[None, :] < layout.counts[:, None]
    sample_of, window_of = used.nonzero(as_tuple=True)  # shape = [C] each: every window actually used
    outs = [_node_rows(cfg, b * n, x) for x in batch.projected]  # per encoder: field -> (B * N, ...) rows
    local = torch.arange(layout.width, device=node_mask.device)
    for chunk in torch.arange(sample_of.shape[0], device=node_mask.device).split(cfg.window_batch):
        sample, window = sample_of[chunk], window_of[chunk]
        start = layout.starts[sample, window]  # shape = [C]
        position = start[:, None] + local  # shape = [C, W]: global index of each window slot
        owned = layout.owner[sample[:, None], position] == window[:, None]
        rows = (sample[:, None] * n + position)[owned]
        for out, block in zip(outs, _dense(encoders, batch.window(sample, start, layout.width), pairs)):
            block.neighbors = block.neighbors + start[:, None, None]  # window-local -> global indices
            for name, values in out.items():
                values[rows] = getattr(block, name)[owned]
    blocks = []
    for out in outs:
        out["neighbors"] = out["neighbors"].masked_fill(~out["neighbor_mask"], 0)
        blocks.append(_Block(fused=None, **{name: v.view(b, n, *v.shape[1:]) for name, v in out.items()}))
    return blocks


def _node_rows(cfg: LEGOConfig, rows: int, like: Tensor) -> dict[str, Tensor]:
    """Zeroed ``(rows, ...)`` buffers of the per-node :class:`_Block` fields that the windows fill in."""
    k, new = cfg.top_k, like.new_zeros
    return {"nodes": new(rows, cfg.out_dim), "neighbors": new(rows, k, dtype=torch.long),
            "neighbor_mask": new(rows, k, dtype=torch.bool), "neighbor_weights": new(rows, k),
            "degrees": new(rows), "relations": new(rows, len(RELATION_STATS))}
