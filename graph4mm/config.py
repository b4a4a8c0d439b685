"""The layers' configurations, importable without torch (so a command line can list their fields cheaply)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HopDiffusedAttentionConfig:
    """Configuration of :class:`HopDiffusedAttention`."""

    dim: int = 512  # node feature width D (input = output)
    heads: int = 8  # attention heads H; dim must be divisible by heads
    K: int = 2  # diffusion steps: output of a node depends on nodes within K hops (paper: 2)
    alpha: float = 0.1  # PPR teleport probability α in θ_i = α(1-α)^i, in (0, 1]
    ffn_ratio: float = 4.0  # FFN hidden width = ffn_ratio · dim
    dropout: float = 0.0  # dropout on attention output and FFN


@dataclass(frozen=True)
class HopAwareAttentionConfig:
    """Configuration of :class:`HopAwareAttention`."""

    dim: int = 512  # node feature width D (input = output)
    heads: int = 8  # attention heads H; dim must be divisible by heads
    max_hops: int = 2  # hop cap: nodes attend to nodes within max_hops hops (incl. themselves)
    ffn_ratio: float = 4.0  # FFN hidden width = ffn_ratio · dim
    dropout: float = 0.0  # dropout on attention output and FFN


@dataclass(frozen=True)
class MMQFormerConfig:
    """Configuration of :class:`MMQFormer`."""

    dim: int = 512  # query / hidden width D
    visual_dim: int = 512  # width of the visual node features (keys/values of cross-attention)
    text_dim: int = 512  # width of the text tokens (projected to dim before joint attention)
    heads: int = 8  # attention heads; dim must be divisible by heads
    layers: int = 1  # number of MM-QFormer layers (paper: 1)
    num_queries: int = 4  # learnable query tokens Q used when forward gets no queries (paper: 4)
    ffn_ratio: float = 4.0  # FFN hidden width = ffn_ratio · dim
    dropout: float = 0.0  # dropout on every residual branch
