"""``AnomalyModel``: multi-level features (+ motion) → LEGO relations + Graph4MM context → per-snippet scores.

One class for the full model, its ablations (switches in :class:`ModelConfig`) and two baselines, so every
variant trains, saves, loads and evaluates through the same code:

* ``arch="vadgraph"`` (the product, :class:`vad.models.heads.GraphFusionHead`): each snippet's own evidence
  (clip, frame change, patches, motion, prompt affinities), LEGO's fused relationship graph read in relationship
  space (statistics of the snippet's row of G), and a within-video context score from hop-diffused attention
  and MM-QFormer tokens, centred per video so that context cannot lift a whole abnormal video.
  Ablations: ``fusion="concat"``, ``readout="propagate"``, ``learn_fusion=False``, ``attention="plain"|"none"``,
  ``qformer=False``, ``context="none"``.
* ``arch="mil_mlp"``: Sultani et al.'s MIL MLP on the same per-snippet evidence.
* ``arch="mtn_concat"``: feature-concatenation fusion with RTFM's multi-scale temporal network (dilated
  convolutions + non-local block): the feature-space fusion the LEGO paper compares with.
* ``arch="oneclass"`` and ``arch="zeroshot"`` (:mod:`vad.models.oneclass`): no training with labels; a memory
  of normal snippets fitted by ``vad fit-normal``, or CLIP prompt similarities, each with within-video graph terms.

Every variant first centres each video on its median feature and divides each level by a per-dimension
scale fitted on the training videos (``fit_input_scale``; stored with the weights).

Shapes: ``B`` videos, ``N`` snippets, ``F`` frames, ``P`` patches, ``K`` prompts, ``D`` feature width,
``M`` motion width, ``H`` hidden width, ``Q`` queries, ``k`` neighbours.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from vad.data.batch import FeatureBatch
from vad.errors import FeatureError
from vad.features.store import VideoFeatures
from vad.models.config import ModelConfig
from vad.models.heads import GraphFusionHead, MILMLPHead, MTNConcatHead
from vad.models.oneclass import OneClassHead, ZeroShotHead
from vad.names import FEATURE_LEVELS, VISUAL_LEVELS


@dataclass
class AnomalyOutput:
    """Per-snippet outputs of :class:`AnomalyModel`."""

    logits: Tensor  # (B, N) pre-sigmoid anomaly scores; padded snippets hold -inf-free junk, mask them
    scores: Tensor  # (B, N) sigmoid(logits) in [0, 1]
    node_mask: Tensor  # (B, N) bool, True = real snippet
    extras: dict[str, Tensor] = field(default_factory=dict)  # e.g. "cross_attention" (B, Q, N), "degrees" (B, N)


def smooth_over_time(logits: Tensor, node_mask: Tensor, reach: int) -> Tensor:
    """Mean of each snippet's logit and its ``reach`` neighbours on either side, real snippets only: ``(B, N)``."""
    w = node_mask.to(logits.dtype)[:, None]  # shape = [B, 1, N]
    kernel = logits.new_ones(1, 1, 2 * reach + 1)
    total = torch.nn.functional.conv1d((logits * node_mask)[:, None], kernel, padding=reach)
    count = torch.nn.functional.conv1d(w, kernel, padding=reach).clamp(min=1)
    return (total / count)[:, 0].masked_fill(~node_mask, 0.0)


class AnomalyModel(nn.Module):
    """The anomaly scorer: ``forward(batch) -> AnomalyOutput`` for any number of snippets N.

    Shapes:
        batch.clip ``(B, N, D)``, batch.frame ``(B, N, F, D)``, batch.patch ``(B, N, P, D)``,
        batch.text ``(K, D)``, batch.node_mask ``(B, N)`` → scores ``(B, N)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        heads = {"vadgraph": GraphFusionHead, "mil_mlp": MILMLPHead, "mtn_concat": MTNConcatHead,
                 "oneclass": OneClassHead, "zeroshot": ZeroShotHead}
        self.head = heads[config.arch](config)  # member 0 (the only one unless config.members > 1)
        self.more_members = nn.ModuleList(heads[config.arch](config) for _ in range(config.members - 1))
        self.exportable = False  # see set_exportable
        # per-level, per-dimension input scales fitted on training features; saved with the weights
        self.register_buffer("input_scale", torch.ones(len(VISUAL_LEVELS), config.feature_dim))  # clip/frame/patch
        self.register_buffer("motion_scale", torch.ones(max(1, config.motion_dim)))  # (M,)

    def forward(self, batch: FeatureBatch) -> AnomalyOutput:
        """Score every snippet of every video in ``batch``."""
        prepared = self.prepare(batch)
        members = (self.head, *self.more_members)
        if isinstance(self.head, GraphFusionHead):  # graphs and powers built once for every member
            outputs = GraphFusionHead.forward_members(members, prepared)
        else:
            outputs = [member(prepared) for member in members]
        if self.config.smoothing:
            outputs = [(smooth_over_time(logits, batch.node_mask, self.config.smoothing), extras)
                       for logits, extras in outputs]
        logits, extras = outputs[0]
        if len(outputs) > 1:  # a deep ensemble: each member's logits, and their mean as the score
            stacked = torch.stack([member_logits for member_logits, _ in outputs])
            extras["member_logits"] = stacked  # (members, B, N): the trainer gives each member its own loss
            if "degrees" in extras:  # (members, B, N): each member's fused-graph degrees, for its regulariser
                extras["member_degrees"] = torch.stack([member_extras["degrees"] for _, member_extras in outputs])
            logits = stacked.mean(0)
        return AnomalyOutput(logits, torch.sigmoid(logits), batch.node_mask, extras)

    def prepare(self, batch: FeatureBatch) -> FeatureBatch:
        """Centre per video (``config.center``) and divide each visual level by its fitted scale."""
        batch = batch.centered(self.exportable) if self.config.center else batch
        scaled = {lvl: None if batch.level(lvl) is None else batch.level(lvl) / self.input_scale[i]
                  for i, lvl in enumerate(VISUAL_LEVELS)}
        motion = batch.motion
        if motion is not None:
            if motion.shape[-1] != self.config.motion_dim:
                raise FeatureError(f"motion features have width {motion.shape[-1]}, the model was trained on "
                                   f"{self.config.motion_dim} (extract with the model's motion settings)")
            motion = motion / self.motion_scale
        return replace(batch, **scaled, motion=motion)

    def set_exportable(self, on: bool = True) -> AnomalyModel:
        """Compute medians by sort + gather instead of ``nanmedian`` (ONNX export; the same numbers); returns self."""
        self.exportable = on
        for head in (self.head, *self.more_members):
            if hasattr(head, "exportable"):
                head.exportable = on
        return self

    @torch.no_grad()
    def fit_input_scale(self, videos: Sequence[VideoFeatures]) -> None:
        """Set ``input_scale`` to each level's per-dimension std over ``videos`` (after centring, if on).

        CLIP features of one scene differ by a small residual (std ~0.005 per dimension for a random backbone,
        larger for real weights); standardising makes the same learning rate work for any backbone.
        """
        for i, lvl in enumerate(VISUAL_LEVELS):
            std = self._level_std(videos, lvl)
            if std is not None:
                self.input_scale[i] = std.to(self.input_scale)
        std = self._level_std(videos, "motion")
        if std is not None and std.shape == self.motion_scale.shape:
            self.motion_scale.copy_(std)

    def _level_std(self, videos: Sequence[VideoFeatures], level: str) -> Tensor | None:
        """Per-dimension std of one level over ``videos`` (after per-video median centring, if on)."""
        rows = []
        for v in videos:
            x = getattr(v, level)
            if x is None:
                continue
            x = torch.from_numpy(x).float()
            if self.config.center:
                x = x - x.median(0, keepdim=True).values
            rows.append(x.reshape(-1, x.shape[-1]))
        if not rows:
            return None
        flat = torch.cat(rows)
        std = flat.std(0) if self.config.center else (flat - flat.mean(0)).std(0)
        return std.clamp(min=1e-6)

    def fusion_weights(self) -> dict[str, Tensor] | None:
        """LEGO's learned A matrices, ``pair name → (P+1, Q+1)``; None for variants without LEGO."""
        legos = [getattr(h, "lego", None) for h in (self.head, *self.more_members)]
        if legos[0] is None:
            return None
        per_member = [lego.fusion.fusion_weights() for lego in legos]  # an ensemble shows its members' mean
        return {name: torch.stack([fw.weights[i] for fw in per_member]).mean(0).detach().cpu()
                for i, name in enumerate(per_member[0].names)}

    def num_parameters(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        c = self.config
        if c.arch == "oneclass":
            sizes = ", ".join(f"{lvl} {self.head.memory(lvl).shape[0]}" for lvl in FEATURE_LEVELS
                              if self.head.memory(lvl).shape[0])
            return f"memory {sizes or 'empty'}, k={c.memory.k}, graph terms {'on' if c.graph_terms.enabled else 'off'}"
        if c.arch == "zeroshot":
            return f"{c.num_prompts} prompts, T={c.zeroshot_temperature:g}, graph terms " \
                   f"{'on' if c.graph_terms.enabled else 'off'}"
        return (f"arch={c.arch}, fusion={c.fusion}, attention={c.attention}, qformer={c.qformer}, "
                f"D={c.feature_dim}, H={c.hidden}" + (f", members={c.members}" if c.members > 1 else ""))
