"""``ModelConfig``: every knob of :class:`vad.models.AnomalyModel`, serialised beside the weights."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

ARCHS = ("vadgraph", "mil_mlp", "mtn_concat")


@dataclass(frozen=True)
class ModelConfig:
    """Every knob of :class:`AnomalyModel`; serialised as JSON beside the weights."""

    arch: str = "vadgraph"  # vadgraph | mil_mlp | mtn_concat
    feature_dim: int = 512  # D: width of the CLIP features
    hidden: int = 128  # H: width of node representations
    levels: tuple[str, ...] = ("clip", "frame", "patch", "text")  # feature levels fused (vadgraph, mtn_concat)
    fusion: str = "lego"  # lego | concat (ablation: feature concatenation instead of graph fusion)
    attention: str = "hop"  # hop | plain (dense self-attention, no structure) | none
    qformer: bool = True  # MM-QFormer cross-modal tokens read by every snippet
    lego_powers: int = 2  # P = Q: highest graph power in LEGO fusion
    pair_sampling: bool = False  # LEGO paper: one random graph pair per training step (eval: mean of pairs)
    top_k: int = 8  # neighbours per snippet taken from the fused graph G
    temporal_edges: int = 2  # plus edges to the c previous and c next snippets (temporal chain)
    window: int = 256  # LEGO windowed mode above this many snippets (linear cost for long videos)
    window_overlap: int = 64  # snippets shared by consecutive windows
    hop_steps: int = 2  # K: diffusion steps of hop-diffused attention
    hop_alpha: float = 0.1  # α: PPR teleport probability
    heads: int = 4  # attention heads
    num_queries: int = 4  # MM-QFormer learnable queries
    dropout: float = 0.1  # dropout in attention, FFN and scorer
    center: bool = True  # subtract each video's median feature first (see FeatureBatch.centered); all archs

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.fusion not in ("lego", "concat") or self.attention not in ("hop", "plain", "none"):
            raise ValueError(f"bad fusion/attention: {self.fusion!r}/{self.attention!r}")
        object.__setattr__(self, "levels", tuple(self.levels))

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of ``asdict`` (unknown keys are an error: a checkpoint from another version says so)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = asdict(self)
        out["levels"] = list(self.levels)
        return out
