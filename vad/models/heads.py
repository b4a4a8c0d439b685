"""The scoring heads behind :class:`AnomalyModel`: the vadgraph graph-fusion head and two baselines."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fusion import LEGOConfig, LEGOGraphEncoder
from graph4mm import HopDiffusedAttention, HopDiffusedAttentionConfig, MMQFormer, MMQFormerConfig
from vad.data.batch import FeatureBatch
from vad.models.config import ModelConfig


def level_inputs(batch: FeatureBatch, levels: tuple[str, ...]) -> dict[str, Tensor]:
    """The feature levels of ``batch`` that ``levels`` asks for and the batch has (text: ``(K, D)``)."""
    available = {"clip": batch.clip, "frame": batch.frame, "patch": batch.patch, "text": batch.text}
    return {name: available[name] for name in levels if available.get(name) is not None}


def concat_level_features(batch: FeatureBatch, levels: tuple[str, ...]) -> Tensor:
    """Feature-space fusion: ``[clip; mean frame; mean patch; prompt affinities]`` → ``(B, N, 3D + K)``.

    Missing levels are zero-filled so the width depends only on the config, not on the batch.
    """
    x = batch.clip
    parts = [x]
    zeros = torch.zeros_like(x)
    for name in ("frame", "patch"):
        if name in levels:
            feat = getattr(batch, name)
            parts.append(feat.mean(2) if feat is not None else zeros)
    if "text" in levels:
        parts.append(text_affinity(x, batch.text))
    return torch.cat(parts, dim=-1)


def text_affinity(x: Tensor, text: Tensor | None) -> Tensor:
    """Cosine similarity of each snippet to each prompt, ``(B, N, D) x (K, D) → (B, N, K)``."""
    if text is None:
        raise ValueError("the 'text' level needs prompt embeddings (batch.text)")
    return F.normalize(x, dim=-1) @ F.normalize(text, dim=-1).T


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


class GraphFusionHead(nn.Module):
    """The vadgraph head (see the module docstring); returns ``(logits (B, N), extras)``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, h = config.feature_dim, config.hidden
        self.lego: LEGOGraphEncoder | None = None
        if config.fusion == "lego":
            self.lego = LEGOGraphEncoder(LEGOConfig(
                levels=config.levels, in_dim=d, out_dim=h, P=config.lego_powers, Q=config.lego_powers,
                top_k=config.top_k, window_size=config.window, window_overlap=config.window_overlap,
                train_pair_sampling=config.pair_sampling))
            self.node_proj = nn.Linear(d, h)
        else:
            self.node_proj = nn.LazyLinear(h)  # width of the concatenation depends on K prompts
        self.attention: nn.Module | None = None
        if config.attention == "hop":
            self.attention = HopDiffusedAttention(HopDiffusedAttentionConfig(
                dim=h, heads=config.heads, K=config.hop_steps, alpha=config.hop_alpha, ffn_ratio=2.0,
                dropout=config.dropout))
        elif config.attention == "plain":
            self.attention = nn.TransformerEncoderLayer(h, config.heads, 2 * h, config.dropout, batch_first=True)
        self.qformer: MMQFormer | None = None
        if config.qformer:
            self.qformer = MMQFormer(MMQFormerConfig(dim=h, visual_dim=h, text_dim=d, heads=config.heads,
                                                     num_queries=config.num_queries, ffn_ratio=2.0,
                                                     dropout=config.dropout))
            self.read_q = nn.Linear(h, h, bias=False)
            self.read_k = nn.Linear(h, h, bias=False)
        self.scorer = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(h, 1))
        context = (int(config.attention != "none") + int(config.qformer)) * h
        self.context_scorer: nn.Sequential | None = None
        if context:
            self.context_scorer = nn.Sequential(nn.Linear(context, h), nn.GELU(), nn.Dropout(config.dropout),
                                                nn.Linear(h, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the context scorer's output layer: training starts from the per-snippet score (see forward)."""
        if self.context_scorer is not None:
            nn.init.zeros_(self.context_scorer[-1].weight)
            nn.init.zeros_(self.context_scorer[-1].bias)

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, mask = self.config, batch.node_mask
        extras: dict[str, Tensor] = {}
        if self.lego is not None:
            enc = self.lego(level_inputs(batch, cfg.levels), batch.clip, mask)
            h = self.node_proj(batch.clip) + enc.nodes  # own features + graph-propagated relations
            graph_nb, graph_mask = enc.neighbors, enc.neighbor_mask
            extras["degrees"] = enc.degrees
        else:
            h = self.node_proj(concat_level_features(batch, cfg.levels))
            graph_nb = graph_mask = None
        own = h  # shape = [B, N, H]; un-normalised, so the size of a snippet's deviation reaches the scorer
        if isinstance(self.attention, HopDiffusedAttention):
            nb, nb_mask = temporal_neighbors(mask, cfg.temporal_edges)
            if graph_nb is not None:
                nb, nb_mask = torch.cat([graph_nb, nb], -1), torch.cat([graph_mask, nb_mask], -1)
            h = self.attention(h, neighbors=nb, neighbor_mask=nb_mask, node_mask=mask)
        elif self.attention is not None:
            h = self.attention(h, src_key_padding_mask=~mask)
        parts = [h] if self.attention is not None else []
        if self.qformer is not None:
            text = batch.text[None].expand(h.shape[0], -1, -1)
            out = self.qformer(h, text, visual_mask=mask)
            tokens = out.query_tokens  # shape = [B, Q, H]
            att = torch.softmax(self.read_q(h) @ self.read_k(tokens).transpose(1, 2) / math.sqrt(h.shape[-1]), -1)
            parts.append(att @ tokens)  # each snippet reads the cross-modal tokens
            extras["cross_attention"] = out.cross_attention
        logits = self.scorer(own).squeeze(-1)
        if self.context_scorer is not None:  # context (attention, cross-modal tokens) adds to the own score
            logits = logits + self.context_scorer(torch.cat(parts, dim=-1)).squeeze(-1)
        return logits.masked_fill(~mask, 0.0), extras


class MILMLPHead(nn.Module):
    """Sultani et al. (CVPR 2018): FC(D→512)-ReLU-FC(512→32)-FC(32→1) with dropout 0.6, per snippet."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(config.feature_dim, 512), nn.ReLU(), nn.Dropout(0.6),
                                 nn.Linear(512, 32), nn.Dropout(0.6), nn.Linear(32, 1))

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        return self.net(batch.clip).squeeze(-1).masked_fill(~batch.node_mask, 0.0), {}


class MTNConcatHead(nn.Module):
    """Concatenated level features → RTFM's multi-scale temporal network → MLP scorer.

    MTN: three dilated temporal convolutions (dilation 1, 2, 4) and a non-local (self-attention) branch,
    concatenated and projected back, with a residual connection.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        h = config.hidden
        self.config = config
        self.inp = nn.LazyLinear(h)
        self.dilated = nn.ModuleList(nn.Conv1d(h, h // 2, 3, padding=d, dilation=d) for d in (1, 2, 4))
        self.non_local = nn.MultiheadAttention(h // 2, max(1, config.heads // 2), batch_first=True)
        self.nl_in = nn.Conv1d(h, h // 2, 1)
        self.out = nn.Conv1d(2 * h, h, 1)
        self.norm = nn.LayerNorm(h)
        self.scorer = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(h, 1))

    def forward(self, batch: FeatureBatch) -> tuple[Tensor, dict[str, Tensor]]:
        mask = batch.node_mask
        x = self.inp(concat_level_features(batch, self.config.levels)) * mask[..., None]  # shape = [B, N, H]
        t = x.transpose(1, 2)  # shape = [B, H, N]
        branches = [F.relu(conv(t)) for conv in self.dilated]
        nl = self.nl_in(t).transpose(1, 2)
        nl, _ = self.non_local(nl, nl, nl, key_padding_mask=~mask, need_weights=False)
        y = self.out(torch.cat(branches + [nl.transpose(1, 2)], 1)).transpose(1, 2)
        h = self.norm(x + y)
        return self.scorer(h).squeeze(-1).masked_fill(~mask, 0.0), {}
