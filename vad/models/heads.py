"""The scoring heads behind :class:`AnomalyModel`: the vadgraph graph-fusion head and two baselines.

Every head maps a prepared :class:`FeatureBatch` to ``(logits (B, N), extras)``. Shapes: ``B`` videos, ``N``
snippets, ``F`` frames, ``P`` patches, ``K`` prompts, ``D`` CLIP width, ``M`` motion width, ``H`` hidden width,
``Q`` queries, ``R`` relation statistics.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion import RELATION_STATS, LEGOGraphEncoder, LEGOOutput, encode_members, prompt_cosine
from graph4mm import HopDiffusedAttention, MMQFormer
from vad.data.batch import FeatureBatch, masked_median
from vad.models.config import ModelConfig


def level_inputs(batch: FeatureBatch, config: ModelConfig) -> dict[str, Tensor]:
    """The feature levels of ``batch`` that the config reads and the batch has (text: ``(K, D)``)."""
    return {name: batch.level(name) for name in config.levels
            if config.uses(name) and batch.level(name) is not None}


def snippet_width(config: ModelConfig) -> int:
    """Width of :func:`snippet_features`: clip, frame change, mean patch, motion, prompt affinities."""
    d, levels = config.feature_dim, config.evidence_levels()
    width = d + d * ("frame" in levels) + d * ("patch" in levels)
    return width + config.motion_dim * ("motion" in levels and config.uses("motion")) + \
        config.num_prompts * ("text" in levels and config.uses("text"))


def snippet_features(batch: FeatureBatch, config: ModelConfig) -> Tensor:
    """Each snippet's own evidence, concatenated: ``(B, N, snippet_width)``.

    ``[clip; last - first frame; mean patch; motion; prompt affinities]`` restricted to
    :meth:`ModelConfig.evidence_levels`; the frame level contributes its change inside the snippet (the clip level
    already is the frames' mean). Missing levels are zero-filled so the width depends only on the config.
    """
    x, levels = batch.clip, config.evidence_levels()
    parts = [x]
    if "frame" in levels:
        parts.append(batch.frame[:, :, -1] - batch.frame[:, :, 0] if batch.frame is not None else torch.zeros_like(x))
    if "patch" in levels:
        parts.append(batch.patch.mean(2) if batch.patch is not None else torch.zeros_like(x))
    if "motion" in levels and config.uses("motion"):
        m = batch.motion
        parts.append(m if m is not None else x.new_zeros(*x.shape[:2], config.motion_dim))
    if "text" in levels and config.uses("text"):
        parts.append(prompt_cosine(x, batch.text) if batch.text is not None
                     else x.new_zeros(*x.shape[:2], config.num_prompts))
    return torch.cat(parts, dim=-1)


def temporal_neighbors(node_mask: Tensor, reach: int) -> tuple[Tensor, Tensor]:
    """Temporal-chain edges: each snippet to its ``reach`` predecessors and successors.

    Returns ``(neighbors, mask)``, both ``(B, N, 2 * reach)``; edges off either end or to padding are masked.
    """
    b, n = node_mask.shape
    offsets = torch.cat([torch.arange(-reach, 0), torch.arange(1, reach + 1)]).to(node_mask.device)
    idx = torch.arange(n, device=node_mask.device)[:, None] + offsets[None, :]  # shape = [N, 2c]
    inside = (idx >= 0) & (idx < n)
    idx = idx.clamp(0, n - 1).expand(b, n, -1)
    mask = inside[None] & node_mask[:, :, None] & torch.gather(node_mask, 1, idx.reshape(b, -1)).view(b, n, -1)
    return idx, mask


def center_per_video(x: Tensor, node_mask: Tensor, sorted_median: bool = False) -> Tensor:
    """``x (B, N, C)`` minus each video's median over its real snippets: what sets a snippet apart in its video.

    ``sorted_median``: the same median by sort + gather (:func:`vad.data.batch.masked_median`, exportable).
    """
    wt = node_mask[:, :, None]
    if sorted_median:
        return (x - masked_median(x, node_mask)) * wt
    median = x.masked_fill(~wt, float("nan")).nanmedian(dim=1, keepdim=True).values.nan_to_num(0.0)
    return (x - median) * wt


def mlp(width_in: int, hidden: int, dropout: float, zero_last: bool = False) -> nn.Sequential:
    """``Linear → GELU → Dropout → Linear(→ 1)``; ``zero_last`` starts it at exactly 0."""
    net = nn.Sequential(nn.Linear(width_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
    if zero_last:
        nn.init.zeros_(net[-1].weight)
        nn.init.zeros_(net[-1].bias)
    return net


def _global_rms(rows: Tensor) -> Tensor:
    """Per-channel RMS of ``rows (M, C)``; under DDP over every rank's rows (as SyncBatchNorm), so a
    data-parallel step sees the statistics of the whole global batch."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return rows.pow(2).mean(0).sqrt().clamp(min=1e-6)
    total = torch.cat([rows.pow(2).sum(0), rows.new_tensor([rows.shape[0]])])
    torch.distributed.all_reduce(total)
    return (total[:-1] / total[-1].clamp(min=1)).sqrt().clamp(min=1e-6)


class RunningScale(nn.Module):
    """Divides features ``(B, N, C)`` by a running per-channel RMS over real snippets (updated in training).

    Unlike LayerNorm it keeps the size of a snippet's deviation: centred relations of a normal video stay small
    instead of being blown up to unit variance.
    """

    def __init__(self, channels: int, momentum: float = 0.05) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("rms", torch.ones(channels))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, x: Tensor, node_mask: Tensor) -> Tensor:
        if self.training:
            with torch.no_grad():
                rms = _global_rms(x[node_mask])
                if not bool(self.initialised):
                    self.rms.copy_(rms)
                    self.initialised.fill_(True)
                else:
                    self.rms.lerp_(rms, self.momentum)
        return x / self.rms


class GraphFusionHead(nn.Module):
    """The vadgraph head: own evidence + LEGO relations + within-video context.

    .. math::
        \\text{logit}_i = s\\big([W x_i;\\ \\rho(G)_i - \\text{med}_j \\rho(G)_j]\\big)
            + \\big(c_i - \\overline{c}\\big), \\qquad c = \\text{ctx}(\\text{HopAttn}(h, G), \\text{MMQ}(h, T))

    * **own**: ``x_i`` the snippet's concatenated levels (:func:`snippet_features`), projected to H.
    * **relations** (LEGO read in relationship space): ``ρ(G)_i`` the statistics of snippet i's row of the fused
      graph G (:func:`fusion.relation_readout`), centred on the video's median row. ``readout="propagate"``
      instead adds LEGO's ``G X W`` to the node representation; ``"both"`` does both.
    * **context**: hop-diffused attention over G's top-k neighbours plus temporal edges, and MM-QFormer tokens
      read back by each snippet, scored by a zero-initialised MLP whose output is centred per video
      (``context="video"``): context moves scores *within* a video but cannot lift a whole abnormal video,
      the shortcut weak labels otherwise reward.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.exportable = False  # True while exporting to ONNX: medians by sort + gather (same numbers)
        h = config.hidden
        self.node_proj = nn.Linear(snippet_width(config), h)
        self.lego: LEGOGraphEncoder | None = None
        relation_width = 0
        if config.fusion == "lego":
            graph_levels = tuple(lvl for lvl in config.levels if config.uses(lvl))
            self.lego = LEGOGraphEncoder(replace(config.lego, levels=graph_levels, in_dim=h, out_dim=h,
                                                 relation_k=config.relation_top_k,
                                                 propagate=config.readout != "relations"))
            self.lego.fusion.weight.requires_grad_(config.learn_fusion)
            if config.readout == "relations":  # G X W is not read: its projection stays out of training
                self.lego.proj.requires_grad_(False)
                self.lego.bias.requires_grad_(False)
            relation_width = len(RELATION_STATS) * (config.readout != "propagate")
        self.relation_norm = RunningScale(relation_width) if relation_width else None
        self.attention: nn.Module | None = None
        if config.attention == "hop":
            self.attention = HopDiffusedAttention(replace(config.hop, dim=h))
        elif config.attention == "plain":
            self.attention = nn.TransformerEncoderLayer(h, config.hop.heads, 2 * h, config.dropout, batch_first=True)
        self.qformer: MMQFormer | None = None
        if config.qformer and config.uses("text"):
            self.qformer = MMQFormer(replace(config.mmq, dim=h, visual_dim=h, text_dim=config.feature_dim))
            self.read_q = nn.Linear(h, h, bias=False)
            self.read_k = nn.Linear(h, h, bias=False)
        self.scorer = mlp(h + relation_width, h, config.dropout)
        context = (int(self.attention is not None) + int(self.qformer is not None)) * h
        self.context_scorer = mlp(context, h, config.dropout, zero_last=True) if context else None

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        return self.forward_members([self], batch)[0]

    @staticmethod
    def forward_members(heads: Sequence[GraphFusionHead], batch: FeatureBatch
                        ) -> list[tuple[Tensor, dict[str, Tensor]]]:
        """Each head's ``(logits, extras)`` on ``batch``, as its own forward gives them, with what holds no weights
        computed once for all of them: the snippet features and LEGO's level graphs and powers
        (:func:`fusion.encode_members`). An ensemble's members share a config, so this is the ensemble's cost
        driver cut from K graph builds to one."""
        cfg, mask = heads[0].config, batch.node_mask
        if any(head.config != cfg for head in heads):
            raise ValueError("forward_members takes heads of one config (an ensemble's members)")
        own = snippet_features(batch, cfg)  # shape = [B, N, snippet_width]
        hs = [head.node_proj(own) for head in heads]  # shape = [B, N, H] each
        if heads[0].lego is None:
            encs = [None] * len(heads)
        else:
            encs = encode_members([head.lego for head in heads], level_inputs(batch, cfg), hs, mask)
        return [head._score(batch, h, enc) for head, h, enc in zip(heads, hs, encs)]

    def _score(self, batch: FeatureBatch, h: Tensor, enc: LEGOOutput | None) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits ``(B, N)`` and extras from the projected snippets ``h`` ``(B, N, H)`` and this head's graph."""
        cfg, mask = self.config, batch.node_mask
        extras: dict[str, Tensor] = {}
        own = [h]
        graph_nb = graph_mask = None
        if enc is not None:
            graph_nb, graph_mask = enc.neighbors, enc.neighbor_mask
            extras["degrees"] = enc.degrees
            if cfg.readout != "relations":
                h = h + enc.nodes  # LEGO's propagation path: G X W
                own[0] = h
            if self.relation_norm is not None:
                relations = center_per_video(enc.relations, mask, self.exportable)  # shape = [B, N, R]
                extras["relations"] = relations
                own.append(self.relation_norm(relations, mask))
        logits = self.scorer(torch.cat(own, dim=-1)).squeeze(-1)
        if self.context_scorer is not None:
            context = self.context_scorer(torch.cat(self._context(h, batch, graph_nb, graph_mask, extras), -1))
            context = context.squeeze(-1)
            if cfg.context == "video":
                context = context - (context * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
            extras["context_logits"] = context
            logits = logits + context
        return logits.masked_fill(~mask, 0.0), extras

    def _context(self, h: Tensor, batch: FeatureBatch, graph_nb: Tensor | None, graph_mask: Tensor | None,
                 extras: dict[str, Tensor]) -> list[Tensor]:
        """Context representations ``(B, N, H)`` each: attention over neighbours, cross-modal tokens read back."""
        mask, parts = batch.node_mask, []
        if isinstance(self.attention, HopDiffusedAttention):
            nb, nb_mask = temporal_neighbors(mask, self.config.temporal_edges)
            if graph_nb is not None:
                nb, nb_mask = torch.cat([graph_nb, nb], -1), torch.cat([graph_mask, nb_mask], -1)
            h = self.attention(h, neighbors=nb, neighbor_mask=nb_mask, node_mask=mask)
            parts.append(h)
        elif self.attention is not None:
            h = self.attention(h, src_key_padding_mask=~mask)
            parts.append(h)
        if self.qformer is not None:
            text = batch.text[None].expand(h.shape[0], -1, -1)
            out = self.qformer(h, text, visual_mask=mask)
            tokens = out.query_tokens  # shape = [B, Q, H]
            att = torch.softmax(self.read_q(h) @ self.read_k(tokens).transpose(1, 2) / math.sqrt(h.shape[-1]), -1)
            parts.append(att @ tokens)  # each snippet reads the cross-modal tokens
            extras["cross_attention"] = out.cross_attention
        return parts


class MILMLPHead(nn.Module):
    """Sultani et al. (CVPR 2018): FC(→512)-ReLU-FC(512→32)-FC(32→1) with dropout 0.6, per snippet.

    Input: the same per-snippet evidence as the vadgraph head (:func:`snippet_features`), so comparisons are fair.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.net = nn.Sequential(nn.Linear(snippet_width(config), 512), nn.ReLU(), nn.Dropout(0.6),
                                 nn.Linear(512, 32), nn.Dropout(0.6), nn.Linear(32, 1))

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.net(snippet_features(batch, self.config)).squeeze(-1)
        return logits.masked_fill(~batch.node_mask, 0.0), {}


class MTNConcatHead(nn.Module):
    """Concatenated level features → RTFM's multi-scale temporal network → MLP scorer.

    MTN: three dilated temporal convolutions (dilation 1, 2, 4) and a non-local (self-attention) branch,
    concatenated and projected back, with a residual connection.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        h = config.hidden
        self.config = config
        self.inp = nn.Linear(snippet_width(config), h)
        self.dilated = nn.ModuleList(nn.Conv1d(h, h // 2, 3, padding=d, dilation=d) for d in (1, 2, 4))
        self.non_local = nn.MultiheadAttention(h // 2, max(1, config.hop.heads // 2), batch_first=True)
        self.nl_in = nn.Conv1d(h, h // 2, 1)
        self.out = nn.Conv1d(2 * h, h, 1)
        self.norm = nn.LayerNorm(h)
        self.scorer = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(h, 1))

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        mask = batch.node_mask
        x = self.inp(snippet_features(batch, self.config)) * mask[..., None]  # shape = [B, N, H]
        t = x.transpose(1, 2)  # shape = [B, H, N]
        branches = [F.relu(conv(t)) for conv in self.dilated]
        nl = self.nl_in(t).transpose(1, 2)
        nl, _ = self.non_local(nl, nl, nl, key_padding_mask=~mask, need_weights=False)
        y = self.out(torch.cat(branches + [nl.transpose(1, 2)], 1)).transpose(1, 2)
        h = self.norm(x + y)
        return self.scorer(h).squeeze(-1).masked_fill(~mask, 0.0), {}
