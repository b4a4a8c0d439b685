"""``AnomalyModel``: multi-level features → LEGO fused graph → hop-diffused attention → MM-QFormer → scores.

One class for the full model, its ablations (switches in :class:`ModelConfig`) and two baselines, so every
variant trains, saves, loads and evaluates through the same code:

* ``arch="vadgraph"`` (the product): LEGO graph fusion over the clip / frame / patch / text relationship graphs,
  Graph4MM hop-diffused attention over G's top-k neighbours plus temporal-chain edges, MM-QFormer cross-modal
  query tokens (visual nodes + prompt embeddings) that every snippet reads back. The logit is a score of the
  snippet's own (LEGO-propagated) representation plus a context score of the attention / MM-QFormer outputs
  whose last layer starts at zero, so training starts from the per-snippet model.
  Ablations: ``fusion="concat"`` (concatenated level features, temporal edges only), ``attention="plain"``
  (dense self-attention without structure) or ``"none"``, ``qformer=False``.
* ``arch="mil_mlp"``: Sultani et al.'s MIL ranking MLP on clip-level features.
* ``arch="mtn_concat"``: feature-concatenation fusion with RTFM's multi-scale temporal network (dilated
  convolutions + non-local block): the feature-space fusion the LEGO paper compares with.

Every variant first centres each video on its median feature and divides each level by a per-dimension
scale fitted on the training videos (``fit_input_scale``; stored with the weights).

Shapes: ``B`` videos, ``N`` snippets, ``F`` frames, ``P`` patches, ``K`` prompts, ``D`` feature width,
``H`` hidden width, ``Q`` queries, ``k`` neighbours."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from vad.data.batch import FeatureBatch
from vad.features.store import VideoFeatures
from vad.models.config import ModelConfig
from vad.models.heads import GraphFusionHead, MILMLPHead, MTNConcatHead
from vad.names import VISUAL_LEVELS


@dataclass
class AnomalyOutput:
    """Per-snippet outputs of :class:`AnomalyModel`."""

    logits: Tensor  # (B, N) pre-sigmoid anomaly scores; padded snippets hold -inf-free junk, mask them
    scores: Tensor  # (B, N) sigmoid(logits) in [0, 1]
    node_mask: Tensor  # (B, N) bool, True = real snippet
    extras: dict[str, Tensor] = field(default_factory=dict)  # e.g. "cross_attention" (B, Q, N), "degrees" (B, N)


class AnomalyModel(nn.Module):
    """The anomaly scorer: ``forward(batch) -> AnomalyOutput`` for any number of snippets N.

    Shapes:
        batch.clip ``(B, N, D)``, batch.frame ``(B, N, F, D)``, batch.patch ``(B, N, P, D)``,
        batch.text ``(K, D)``, batch.node_mask ``(B, N)`` → scores ``(B, N)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        heads = {"vadgraph": GraphFusionHead, "mil_mlp": MILMLPHead, "mtn_concat": MTNConcatHead}
        self.head = heads[config.arch](config)
        # per-level, per-dimension input scale (clip, frame, patch), fitted on training features; saved with weights
        self.register_buffer("input_scale", torch.ones(len(VISUAL_LEVELS), config.feature_dim))

    def forward(self, batch: FeatureBatch) -> AnomalyOutput:
        """Score every snippet of every video in ``batch``."""
        logits, extras = self.head(self.prepare(batch))
        return AnomalyOutput(logits, torch.sigmoid(logits), batch.node_mask, extras)

    def prepare(self, batch: FeatureBatch) -> FeatureBatch:
        """Centre per video (``config.center``) and divide each visual level by its fitted scale."""
        batch = batch.centered() if self.config.center else batch
        scaled = {lvl: None if getattr(batch, lvl) is None else getattr(batch, lvl) / self.input_scale[i]
                  for i, lvl in enumerate(VISUAL_LEVELS)}
        return FeatureBatch(scaled["clip"], batch.node_mask, scaled["frame"], scaled["patch"], batch.text)

    @torch.no_grad()
    def fit_input_scale(self, videos: Sequence[VideoFeatures]) -> None:
        """Set ``input_scale`` to each level's per-dimension std over ``videos`` (after centring, if on).

        CLIP features of one scene differ by a small residual (std ~0.005 per dimension for a random backbone,
        larger for real weights); standardising makes the same learning rate work for any backbone.
        """
        for i, lvl in enumerate(VISUAL_LEVELS):
            rows = []
            for v in videos:
                x = getattr(v, lvl)
                if x is None:
                    continue
                x = torch.from_numpy(x).float()
                if self.config.center:
                    x = x - x.median(0, keepdim=True).values
                rows.append(x.reshape(-1, x.shape[-1]))
            if rows:
                flat = torch.cat(rows)
                std = flat.std(0) if self.config.center else (flat - flat.mean(0)).std(0)
                self.input_scale[i] = std.clamp(min=1e-6).to(self.input_scale)

    def fusion_weights(self) -> dict[str, Tensor] | None:
        """LEGO's learned A matrices, ``pair name → (P+1, Q+1)``; None for variants without LEGO."""
        lego = getattr(self.head, "lego", None)
        if lego is None:
            return None
        fw = lego.fusion.fusion_weights()
        return {name: w.detach().cpu() for name, w in zip(fw.names, fw.weights)}

    def num_parameters(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        c = self.config
        return (f"arch={c.arch}, fusion={c.fusion}, attention={c.attention}, qformer={c.qformer}, "
                f"D={c.feature_dim}, H={c.hidden}")
