"""The trained model as a live snippet scorer: each new snippet scored over a sliding context of W snippets."""
from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from vad.engine.inference import score_features
from vad.engine.live import SnippetScore
from vad.features.extract import clip_level
from vad.features.store import VideoFeatures, VideoMeta
from vad.features.video import SnippetConfig

if TYPE_CHECKING:
    from vad.engine.score import Scorer


class ModelSnippetScorer:
    """A trained model plus its extractor, scoring each new snippet over the last W snippets' features."""

    def __init__(self, scorer: Scorer, window: int) -> None:
        self.scorer = scorer  # a vad.engine.score.Scorer (model + the extractor it was trained with)
        self.extractor = scorer.extractor
        self.snippets: SnippetConfig = self.extractor.config.snippets
        self.short_side: int | None = self.extractor.backbone.image_size
        threshold = scorer.loaded.info.get("threshold")
        self.default_threshold = float(threshold) if isinstance(threshold, (int, float)) else None
        self.context: deque[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = deque(maxlen=window)

    @classmethod
    def from_model_dir(cls, model_dir: str | os.PathLike, window: int, device: str = "auto",
                       backbone: str | None = None, pretrained: str | None = None) -> ModelSnippetScorer:
        """Load a model directory and rebuild its extractor (see :class:`vad.engine.score.Scorer`)."""
        from vad.engine.score import ScoreConfig, Scorer

        return cls(Scorer(model_dir, ScoreConfig(device=device, batch_snippets=1, backbone=backbone,
                                                 pretrained=pretrained)), window)

    def describe(self) -> str:
        """One line about the model (for the start event)."""
        return self.scorer.describe()

    def score(self, frames: np.ndarray) -> SnippetScore:
        """Encode the snippet's F frames, append to the context, score the context, keep the newest score."""
        frame_level, patches = self.extractor.encode_snippets(frames[None])  # (1, F, D), (1, P, D) | None
        self.context.append((clip_level(frame_level)[0], frame_level[0], None if patches is None else patches[0]))
        clip, frame, patch = zip(*self.context, strict=True)
        bb = self.extractor.backbone
        feats = VideoFeatures(np.stack(clip), VideoMeta("live", snippet_len=self.snippets.snippet_len,
                                                        backbone=bb.name, weights=bb.weights_id),
                              np.stack(frame), None if patch[0] is None else np.stack(patch))
        loaded = self.scorer.loaded
        scores = score_features(loaded.model, feats, loaded.text, loaded.levels, self.scorer.device)
        best = int(scores.best_prompt[-1])
        return SnippetScore(float(scores.snippets[-1]), loaded.prompts[best] if 0 <= best < len(loaded.prompts)
                            else None)


