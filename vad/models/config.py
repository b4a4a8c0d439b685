"""``ModelConfig``: every knob of :class:`vad.models.AnomalyModel`, serialised as JSON beside the weights.

The graph components keep their own configs, nested here as open_clip nests ``vision_cfg`` / ``text_cfg``:
``lego`` (:class:`fusion.LEGOConfig`), ``hop`` (:class:`graph4mm.HopDiffusedAttentionConfig`) and ``mmq``
(:class:`graph4mm.MMQFormerConfig`). Their width and level fields (``in_dim``, ``out_dim``, ``dim``,
``visual_dim``, ``text_dim``, ``levels``) are set by the model from the top-level fields, so one width is
never stated twice.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields

from fusion import LEGOConfig
from graph4mm import HopDiffusedAttentionConfig, MMQFormerConfig
from vad.names import ALL_LEVELS, VISUAL_LEVELS

ARCHS = ("vadgraph", "mil_mlp", "mtn_concat", "oneclass", "zeroshot")
READOUTS = ("relations", "propagate", "both")
CONTEXT_SCOPES = ("video", "none")


def _default_lego() -> LEGOConfig:
    return LEGOConfig(P=2, Q=2, top_k=8, train_pair_sampling=False, window_size=256, window_overlap=64)


def _default_hop() -> HopDiffusedAttentionConfig:
    return HopDiffusedAttentionConfig(heads=4, K=2, alpha=0.1, ffn_ratio=2.0, dropout=0.1)


def _default_mmq() -> MMQFormerConfig:
    return MMQFormerConfig(heads=4, num_queries=4, ffn_ratio=2.0, dropout=0.1)


@dataclass(frozen=True)
class MemoryConfig:
    """The one-class model's memory of normal snippets, per feature level (``arch="oneclass"``)."""

    size: int = 4096  # vectors kept per level after reduction: bounds the model's size and query time
    pool: int = 32768  # vectors sampled uniformly per level before reduction: bounds memory while fitting
    reduce: str = "coreset"  # coreset (greedy k-center, as PatchCore) | kmeans | random
    projection_dim: int = 128  # coreset distances on a random projection to this width (0: full width)
    k: int = 3  # a vector's distance to normal: mean over its k nearest memory vectors
    seed: int = 0  # sampling, projection and coreset start

    def __post_init__(self) -> None:
        if self.reduce not in ("coreset", "kmeans", "random"):
            raise ValueError(f"MemoryConfig.reduce must be coreset, kmeans or random, got {self.reduce!r}")
        if min(self.size, self.pool, self.k) < 1 or self.pool < self.size:
            raise ValueError(f"MemoryConfig: need 1 <= size <= pool and k >= 1, got size={self.size}, "
                             f"pool={self.pool}, k={self.k}")


@dataclass(frozen=True)
class GraphTermsConfig:
    """Within-video graph terms of the one-class and zero-shot scores (relationship graph over the snippets)."""

    enabled: bool = True  # False: plain per-snippet scores (k-NN distance, or prompt probability)
    neighbors: int = 4  # each snippet's top-k neighbours in the video's relationship graph
    temporal_edges: int = 1  # also the c previous and c next snippets, weighted by their similarity
    neighborhood_weight: float = 1.0  # one-class: weight of the snippet's distance from its graph neighbourhood
    diffusion: float = 0.5  # alpha: how much each diffusion step takes from similar neighbours' scores
    steps: int = 1  # diffusion steps (an event's snippets share their evidence and score as a whole)
    window: int = 256  # graphs are built over windows of this many snippets (linear cost in N)
    sharpness: float = 4.0  # RBF graph width: gamma = sharpness / mean squared distance in the window


@dataclass(frozen=True)
class ModelConfig:
    """Every knob of :class:`AnomalyModel`; serialised as JSON beside the weights."""

    arch: str = "vadgraph"  # vadgraph | mil_mlp (Sultani) | mtn_concat (RTFM's MTN) | oneclass | zeroshot
    feature_dim: int = 512  # D: width of the CLIP features
    motion_dim: int = 0  # M: width of the motion level (0 = the features have none)
    num_prompts: int = 0  # K: prompt embeddings the text level holds (0 = no text level)
    hidden: int = 64  # H: width of node representations
    levels: tuple[str, ...] = VISUAL_LEVELS + ("text", "motion")  # feature levels the model reads
    own_levels: tuple[str, ...] = ("clip", "motion")  # levels a snippet's own evidence concatenates (LEGO, baselines)
    fusion: str = "lego"  # lego (relationship graphs fused by LEGO) | concat (ablation: concatenate every level)
    readout: str = "relations"  # LEGO read-out: relations (each snippet's row of G) | propagate (G X W) | both
    learn_fusion: bool = True  # learn LEGO's A matrices (False: frozen at the uniform initialisation)
    attention: str = "none"  # hop (hop-diffused over G neighbours + time) | plain (dense) | none (see README)
    qformer: bool = False  # MM-QFormer cross-modal tokens that each snippet reads back (off by default: see README)
    context: str = "video"  # video: context scores are centred per video (no whole-video lift) | none: raw
    temporal_edges: int = 2  # attention edges to the c previous and c next snippets
    smoothing: int = 2  # final logits averaged over ±this many snippets (0 = off): events span several snippets
    relation_top_k: int = 4  # k of the "mean of the k strongest relations" read-out
    dropout: float = 0.1  # dropout in the scorers
    center: bool = True  # subtract each video's median feature first (all archs)
    members: int = 5  # independently initialised heads, each on its own loss, logits averaged (oneclass/zeroshot: 1)
    lego: LEGOConfig = field(default_factory=_default_lego)  # LEGO graph fusion (powers, kernel, windows)
    hop: HopDiffusedAttentionConfig = field(default_factory=_default_hop)  # Graph4MM hop-diffused attention
    mmq: MMQFormerConfig = field(default_factory=_default_mmq)  # Graph4MM MM-QFormer
    memory: MemoryConfig = field(default_factory=MemoryConfig)  # oneclass: the memory of normal snippets
    graph_terms: GraphTermsConfig = field(default_factory=GraphTermsConfig)  # oneclass, zeroshot: graph terms
    zeroshot_temperature: float = 0.01  # zeroshot: softmax temperature over prompt cosines (CLIP's 1/100)

    def __post_init__(self) -> None:
        for name, value, choices in (("arch", self.arch, ARCHS), ("fusion", self.fusion, ("lego", "concat")),
                                     ("attention", self.attention, ("hop", "plain", "none")),
                                     ("readout", self.readout, READOUTS), ("context", self.context, CONTEXT_SCOPES)):
            if value not in choices:
                raise ValueError(f"ModelConfig.{name} must be one of {choices}, got {value!r}")
        self._check_sizes()
        for name, heads in (("hop.heads", self.hop.heads), ("mmq.heads", self.mmq.heads)):
            if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {heads!r}")
        if self.hidden % self.hop.heads or self.hidden % self.mmq.heads:
            raise ValueError(f"ModelConfig.hidden={self.hidden} must be divisible by the attention heads")
        unknown = [lvl for lvl in self.levels if lvl not in ALL_LEVELS]
        if unknown:
            raise ValueError(f"ModelConfig.levels: unknown level(s) {unknown}")
        if self.arch == "zeroshot" and self.center:
            raise ValueError("ModelConfig: arch zeroshot compares raw CLIP embeddings with prompts: center=False")
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "own_levels", tuple(self.own_levels))

    def _check_sizes(self) -> None:
        """Widths and the member count are positive integers; only trained archs have several members."""
        for name in ("feature_dim", "hidden", "members"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.arch in ("oneclass", "zeroshot"):  # nothing is trained: one head
            object.__setattr__(self, "members", 1)

    def evidence_levels(self) -> tuple[str, ...]:
        """Levels concatenated into each snippet's own evidence: every level for feature-space fusion
        (``fusion="concat"``), else ``own_levels`` (the other levels reach the LEGO head through its graphs)."""
        if self.arch == "vadgraph" and self.fusion == "concat":
            return self.levels
        return tuple(lvl for lvl in self.own_levels if lvl in self.levels or lvl == "clip")

    def uses(self, level: str) -> bool:
        """Whether the model reads ``level`` (motion and text also need their widths to be known)."""
        if level == "motion":
            return "motion" in self.levels and self.motion_dim > 0
        if level == "text":
            return "text" in self.levels and self.num_prompts > 0
        return level in self.levels

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them (a checkpoint of another layout).
        A config saved before ensembles existed had one member."""
        return _from_dict(cls, {"members": 1, **data} if isinstance(data, dict) else data)

    def to_dict(self) -> dict:
        """JSON-ready nested dict."""
        return _jsonable(asdict(self))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _from_dict(cls, data: dict):
    """Build dataclass ``cls`` from a nested dict, recursing into dataclass-typed fields."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown} (a checkpoint of an older vadgraph layout: "
                         f"retrain it with `vad train`)")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = _from_dict(hint, value)
        else:
            _check_value(f"{cls.__name__}.{key}", hint, value)
            if typing.get_origin(hint) is tuple or (isinstance(hint, types.GenericAlias) and hint.__origin__ is tuple):
                value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _check_value(name: str, hint, value) -> None:
    """ValueError naming ``name`` unless ``value`` is of the JSON kind ``hint`` asks for (ints >= 0, finite floats,
    booleans, strings, lists of strings; ``X | None`` also takes null)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return
    kinds = {int: "an integer >= 0", float: "a finite number", bool: "true or false", str: "a string"}
    for option in options:
        if option is bool and isinstance(value, bool) or option is str and isinstance(value, str):
            return
        if option is int and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            return
        if typing.get_origin(option) is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return
    want = " or ".join(kinds.get(o, "a list of strings" if typing.get_origin(o) is tuple else "null")
                       for o in options)
    raise ValueError(f"{name} must be {want}, got {value!r}"[:300])
