"""Zero-shot scoring: no labels, no normal footage, no training (``vad score --zero-shot [--prompts FILE]``).

Each snippet's clip-level CLIP embedding is compared with the text embeddings of the prompts (the normal prompt
first): ``p = softmax(cos / T)`` over the prompts, anomaly score ``1 - p(normal)``, diffused over the video's
snippet graph (:class:`vad.models.oneclass.ZeroShotHead`). The model is built on the fly, an ``arch="zeroshot"``
:class:`AnomalyModel` with no weights, so it scores through the same code as trained models.

**It needs real CLIP weights** (e.g. ``--pretrained openai``): the scores are only as good as CLIP's alignment of
images with the prompt texts, and with a random-initialised backbone they are noise.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from vad.engine.calibration import DEFAULT_THRESHOLD, Threshold
from vad.models.anomaly import AnomalyModel
from vad.models.checkpoint import LoadedModel
from vad.models.config import GraphTermsConfig, ModelConfig

if TYPE_CHECKING:
    from vad.engine.score import ScoreConfig
    from vad.features.extract import FeatureExtractor

log = logging.getLogger(__name__)


def zero_shot_model(text: np.ndarray, temperature: float = 0.01,
                    graph_terms: GraphTermsConfig = GraphTermsConfig()) -> AnomalyModel:
    """An ``arch="zeroshot"`` model over prompt embeddings ``text`` ``(K, D)`` (normal prompt first)."""
    text = np.asarray(text)
    if text.ndim != 2 or text.shape[0] < 2:
        raise ValueError(f"zero-shot needs (K >= 2, D) prompt embeddings, got shape {text.shape}")
    config = ModelConfig(arch="zeroshot", feature_dim=int(text.shape[1]), num_prompts=int(text.shape[0]),
                         levels=("clip", "text"), center=False, zeroshot_temperature=temperature,
                         graph_terms=graph_terms)
    return AnomalyModel(config).eval()


def zero_shot_loaded(text: np.ndarray, prompts: Sequence[str], backbone: dict | None = None,
                     temperature: float = 0.01, graph_terms: GraphTermsConfig = GraphTermsConfig()) -> LoadedModel:
    """A :class:`LoadedModel` for a zero-shot model, as if read from a checkpoint (reads the clip level only)."""
    model = zero_shot_model(text, temperature, graph_terms)
    return LoadedModel(model, ("clip",), np.asarray(text, np.float32), list(prompts), backbone or {},
                       {"zero_shot": True, "thresholds": {}})


def zero_shot_scorer_parts(config: ScoreConfig, device: torch.device | str
                           ) -> tuple[LoadedModel, FeatureExtractor, Threshold]:
    """What :class:`vad.engine.score.Scorer` needs for ``--zero-shot``: the model, the extractor, the threshold.

    The backbone is ``config.backbone`` / ``config.pretrained`` or the extractor's default (ViT-B-16, openai);
    the prompts come from ``config.prompts`` (a file, normal first) or the UCF-Crime default set.
    """
    from vad.features.backbone import BackboneConfig, random_seed
    from vad.features.extract import DEFAULT_PROMPTS, ExtractConfig, FeatureExtractor, read_prompt_file

    prompts = read_prompt_file(config.prompts) if config.prompts else DEFAULT_PROMPTS
    default = BackboneConfig()
    backbone = BackboneConfig(config.backbone or default.name, config.pretrained or default.pretrained,
                              config.device, config.precision, default.patch_grid)
    if random_seed(backbone.pretrained) is not None:
        log.warning("zero-shot scoring with a RANDOM backbone: prompt similarities are noise (use real CLIP weights)")
    extractor = FeatureExtractor(ExtractConfig(backbone=backbone, batch_snippets=config.batch_snippets,
                                               prompts=tuple(prompts), motion=False))
    text = extractor.text_features()
    snippets = extractor.config.snippets
    loaded = zero_shot_loaded(text.embeddings, prompts, {
        "name": extractor.backbone.name, "weights": extractor.backbone.weights_id,
        "snippet_len": snippets.snippet_len, "frames_per_snippet": snippets.frames_per_snippet})
    loaded = replace(loaded, model=loaded.model.to(device))
    given = config.segments.threshold
    if given is not None:
        return loaded, extractor, Threshold(float(given), "given", f"{given:g} (given)")
    return loaded, extractor, Threshold(DEFAULT_THRESHOLD, "zeroshot", (
        f"{DEFAULT_THRESHOLD:g} (zero-shot: the anomaly prompts outweigh the normal one; nothing to calibrate on)"))
