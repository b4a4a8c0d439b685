"""MM-QFormer: multi-mapping querying transformer over visual nodes and text tokens (BLIP-2 Q-Former)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graph4mm import ops
from graph4mm.config import MMQFormerConfig

__all__ = ["AttentionOutput", "MMQFormer", "MMQFormerConfig", "MMQFormerOutput", "MultiHeadAttention"]


@dataclass
class AttentionOutput:
    """Output of :class:`MultiHeadAttention`.

    Attributes:
        values: ``(B, Lq, D)`` attended values after the output projection.
        weights: ``(B, Lq, Lk)`` attention weights averaged over heads (rows of padded-only keys are 0).
    """

    values: Tensor  # (B, Lq, D)
    weights: Tensor  # (B, Lq, Lk), mean over heads


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention with key padding; keys/values may have another width than queries.

    .. math::
        \mathrm{out} = W_O\,\mathrm{merge}_h\big(
            \operatorname{masked\,softmax}(Q_h K_h^\top/\sqrt{D_h})\,V_h\big)

    A query whose keys are all padding gets a zero update (never NaN).

    Shapes:
        query ``(B, Lq, D)``, key_value ``(B, Lk, D_kv)``, key_mask ``(B, Lk)`` bool (True = real)
        → :class:`AttentionOutput`.
    """

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        kv_dim = dim if kv_dim is None else kv_dim
        self.dim, self.heads, self.kv_dim = dim, heads, kv_dim
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections, zero biases."""
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.o_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, kv_dim={self.kv_dim}"

    def forward(self, query: Tensor, key_value: Tensor, key_mask: Tensor | None = None) -> AttentionOutput:
        """Attend from ``query`` to ``key_value`` (see class docstring for shapes)."""
        q = ops.split_heads(self.q_proj(query), self.heads)  # (B, H, Lq, Dh)
        k = ops.split_heads(self.k_proj(key_value), self.heads)  # (B, H, Lk, Dh)
        v = ops.split_heads(self.v_proj(key_value), self.heads)
        if key_mask is None:
            key_mask = torch.ones(key_value.shape[:2], dtype=torch.bool, device=key_value.device)
        t = ops.masked_softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), key_mask[:, None, None, :])
        return AttentionOutput(values=self.o_proj(ops.merge_heads(t @ v)), weights=t.mean(dim=1))


@dataclass
class MMQFormerOutput:
    """Output of :class:`MMQFormer`.

    Attributes:
        query_tokens: ``(B, Q, D)`` cross-modal query tokens after the last layer.
        cross_attention: ``(B, Q, N)`` last layer's query→visual attention averaged over heads
            (which visual nodes / snippets each query reads; zero on padded nodes).
    """

    query_tokens: Tensor  # (B, Q, D)
    cross_attention: Tensor  # (B, Q, N)


class MMQFormerLayer(nn.Module):
    """One MM-QFormer layer: query self-attn → query→visual cross-attn → joint [queries; text] attn → FFN.

    Each sub-block is ``x ← LN(x + Dropout(block(x)))``. Text tokens are updated by the joint block and
    passed on to the next layer.

    Shapes:
        queries ``(B, Q, D)``, visual ``(B, N, D_v)``, text ``(B, K, D)``, masks ``(B, N)`` / ``(B, K)``
        → (queries ``(B, Q, D)``, text ``(B, K, D)``, cross-attention ``(B, Q, N)``).
    """

    def __init__(self, config: MMQFormerConfig) -> None:
        super().__init__()
        d = config.dim
        self.self_attn = MultiHeadAttention(d, config.heads)
        self.cross_attn = MultiHeadAttention(d, config.heads, kv_dim=config.visual_dim)
        self.joint_attn = MultiHeadAttention(d, config.heads)
        hidden = round(config.ffn_ratio * d)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Dropout(config.dropout),
                                 nn.Linear(hidden, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))
        self.dropout = nn.Dropout(config.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise attention blocks, FFN (Xavier, zero bias) and LayerNorms."""
        for attn in (self.self_attn, self.cross_attn, self.joint_attn):
            attn.reset_parameters()
        for lin in (self.ffn[0], self.ffn[3]):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        for norm in self.norms:
            norm.reset_parameters()

    def forward(self, queries: Tensor, visual: Tensor, text: Tensor, visual_mask: Tensor,
                text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Apply the layer (see class docstring)."""
        nq = queries.shape[1]
        queries = self.norms[0](queries + self.dropout(self.self_attn(queries, queries).values))
        cross = self.cross_attn(queries, visual, visual_mask)
        queries = self.norms[1](queries + self.dropout(cross.values))
        joint = torch.cat([queries, text], dim=1)  # (B, Q + K, D)
        joint_mask = torch.cat([torch.ones_like(text_mask[:, :1]).expand(-1, nq), text_mask], dim=1)
        joint = self.norms[2](joint + self.dropout(self.joint_attn(joint, joint, joint_mask).values))
        queries, text = joint[:, :nq], joint[:, nq:]
        queries = self.norms[3](queries + self.dropout(self.ffn(queries)))
        return queries, text, cross.weights


class MMQFormer(nn.Module):
    """Multi-mapping querying transformer (Graph4MM's MM-QFormer, BLIP-2 Q-Former style).

    A set of query tokens (learnable, ``num_queries`` of them, or given by the caller) reads the
    (hop-diffused) visual nodes by cross-attention and the text tokens by joint self-attention, layer
    after layer (see :class:`MMQFormerLayer`). Text is projected from ``text_dim`` to ``dim``; visual
    nodes enter the cross-attention keys/values at their own width ``visual_dim``. Padded visual nodes and
    text tokens (mask False) never influence the outputs.

    Shapes:
        visual ``(B, N, D_v)``, text ``(B, K, D_t)``, visual_mask ``(B, N)``, text_mask ``(B, K)``,
        queries ``(B, Q, D)`` or ``(Q, D)`` or None → :class:`MMQFormerOutput`.
    """

    def __init__(self, config: MMQFormerConfig) -> None:
        super().__init__()
        self.config = config
        self.queries = nn.Parameter(torch.empty(config.num_queries, config.dim))  # learnable queries (Q, D)
        self.text_proj = nn.Linear(config.text_dim, config.dim)
        self.text_norm = nn.LayerNorm(config.dim)
        self.layers = nn.ModuleList(MMQFormerLayer(config) for _ in range(config.layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Queries ~ N(0, 0.02); text projection Xavier; layers re-initialised."""
        nn.init.normal_(self.queries, std=0.02)
        nn.init.xavier_uniform_(self.text_proj.weight)
        nn.init.zeros_(self.text_proj.bias)
        self.text_norm.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()

    def extra_repr(self) -> str:
        c = self.config
        return (f"dim={c.dim}, visual_dim={c.visual_dim}, text_dim={c.text_dim}, heads={c.heads}, "
                f"layers={c.layers}, num_queries={c.num_queries}")

    def forward(
        self,
        visual: Tensor,
        text: Tensor,
        visual_mask: Tensor | None = None,
        text_mask: Tensor | None = None,
        queries: Tensor | None = None,
    ) -> MMQFormerOutput:
        """Run the query tokens through all layers (see class docstring for shapes)."""
        c = self.config
        b = visual.shape[0]
        if visual.shape[-1] != c.visual_dim or text.shape[-1] != c.text_dim:
            raise ValueError(f"expected visual (B, N, {c.visual_dim}) and text (B, K, {c.text_dim}), got "
                             f"{tuple(visual.shape)} and {tuple(text.shape)}")
        if queries is None:
            queries = self.queries
        if queries.dim() == 2:
            queries = queries[None].expand(b, -1, -1)
        if visual_mask is None:
            visual_mask = torch.ones(visual.shape[:2], dtype=torch.bool, device=visual.device)
        if text_mask is None:
            text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        text = self.text_norm(self.text_proj(text))  # (B, K, D)
        cross = visual.new_zeros(b, queries.shape[1], visual.shape[1])
        for layer in self.layers:
            queries, text, cross = layer(queries, visual, text, visual_mask.bool(), text_mask.bool())
        return MMQFormerOutput(query_tokens=queries, cross_attention=cross)
