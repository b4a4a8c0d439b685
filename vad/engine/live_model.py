"""The trained model as a live snippet scorer: each new snippet scored over a sliding context of W snippets."""
from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from vad.engine.inference import score_features
from vad.engine.live import SnippetScore
from vad.features.decode import split_motion
from vad.features.extract import clip_level
from vad.features.motion import MotionEncoder
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
        self.pairs = bool(self.extractor.config.motion)  # the model reads the optical-flow motion level
        self.motion = MotionEncoder(self.extractor.config.motion_config) if self.pairs else None
        # the threshold stored with the model (vad.engine.calibration), None for a model that stores none
        self.default_threshold = scorer.threshold.value if scorer.threshold.source != "default" else None
        self.context: deque[tuple[np.ndarray, ...]] = deque(maxlen=window)  # (clip, frame, patch, motion) each

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
        """Features of the snippet (as ``vad extract`` makes them), appended to the context; the context is
        scored and the newest snippet's score kept."""
        batch, motion = frames[None], None  # (1, F, H, W, 3), or (1, 2F, H, W, 3) flow pairs
        if self.motion is not None:
            batch, motion = split_motion(batch, self.motion)  # (1, F, H, W, 3), motion (1, M)
        frame_level, patches = self.extractor.encode_snippets(batch)  # (1, F, D), (1, P, D) | None
        self.context.append((clip_level(frame_level)[0], frame_level[0], None if patches is None else patches[0],
                             None if motion is None else motion[0]))
        clip, frame, patch, moves = zip(*self.context, strict=True)
        bb = self.extractor.backbone
        feats = VideoFeatures(np.stack(clip), VideoMeta("live", snippet_len=self.snippets.snippet_len,
                                                        backbone=bb.name, weights=bb.weights_id),
                              np.stack(frame), None if patch[0] is None else np.stack(patch),
                              motion=None if moves[0] is None else np.stack(moves))
        loaded = self.scorer.loaded
        scores = score_features(loaded.model, feats, loaded.text, loaded.levels, self.scorer.device)
        best = int(scores.best_prompt[-1])
        return SnippetScore(float(scores.snippets[-1]), loaded.prompts[best] if 0 <= best < len(loaded.prompts)
                            else None)


