"""Per-video scoring: features → snippet scores → frame scores, plus the prompt each snippet matches best."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fusion import prompt_cosine
from vad.data.batch import collate
from vad.data.dataset import VideoRecord
from vad.engine.metrics import expand_to_frames
from vad.errors import FeatureError
from vad.features.store import VideoFeatures
from vad.models.anomaly import AnomalyModel


@dataclass
class VideoScores:
    """Scores of one video.

    Shapes: snippets ``(N,)``; frames ``(T,)`` (each snippet's score repeated over its S frames);
    best_prompt ``(N,)`` index into the prompt list of the anomaly prompt each snippet is most similar to
    (CLIP cosine of the clip-level feature; -1 without prompts).
    """

    name: str
    snippets: np.ndarray
    frames: np.ndarray
    fps: float
    snippet_len: int
    best_prompt: np.ndarray
    times: np.ndarray | None = None  # (T,) start of each frame in seconds for variable-frame-rate videos
    prompt_similarity: np.ndarray | None = None  # (N,) cosine of each snippet to its best anomaly prompt

    def frame_times(self) -> np.ndarray:
        """Start time of every frame in seconds, ``(T,)``: the container's for VFR videos, else ``i / fps``."""
        if self.times is not None and len(self.times) == len(self.frames):
            return self.times
        return np.arange(len(self.frames)) / (self.fps if self.fps > 0 else 1.0)

    @property
    def duration_s(self) -> float:
        """Length of the video in seconds (the last frame lasts one average frame period)."""
        t = self.frame_times()
        last = t[-1] - t[-2] if self.times is not None and len(t) > 1 else 1.0 / (self.fps if self.fps > 0 else 1.0)
        return float(t[-1] + last) if len(t) else 0.0


def best_prompts(features: VideoFeatures, text: np.ndarray | None) -> np.ndarray:
    """Index of the most similar *anomaly* prompt (the first prompt is the normal one) per snippet."""
    return prompt_match(features, text)[0]


def prompt_match(features: VideoFeatures, text: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per snippet, the most similar *anomaly* prompt's index ``(N,)`` (-1 without prompts) and its cosine
    similarity ``(N,)`` (None without prompts); the first prompt is the normal one."""
    if text is None or len(text) < 2:
        return np.full(features.num_snippets, -1, dtype=np.int64), None
    clip, prompts = torch.from_numpy(features.clip).float(), torch.from_numpy(text).float()
    sims = prompt_cosine(clip[None], prompts)[0].numpy()  # (N, K)
    best = sims[:, 1:].argmax(1) + 1
    return best.astype(np.int64), sims[np.arange(len(best)), best].astype(np.float32)


@torch.inference_mode()
def score_features(model: AnomalyModel, features: VideoFeatures, text: np.ndarray | None,
                   levels: Sequence[str], device: torch.device | str = "cpu") -> VideoScores:
    """Score one whole video (any number of snippets; the model itself windows long videos)."""
    model.eval()
    batch = collate([features], levels, text).to(device)
    snippets = model(batch).scores[0].float().cpu().numpy()
    if not np.isfinite(snippets).all():
        raise FeatureError(f"{features.meta.name}: the model gives NaN scores for this video")
    frames = expand_to_frames(snippets, features.num_video_frames, features.meta.snippet_len)
    best, similarity = prompt_match(features, text)
    return VideoScores(features.meta.name, snippets, frames, features.meta.fps, features.meta.snippet_len,
                       best, features.frame_times, similarity)


def score_records(model: AnomalyModel, records: Sequence[VideoRecord], text: np.ndarray | None,
                  levels: Sequence[str], device: torch.device | str = "cpu") -> dict[str, VideoScores]:
    """:func:`score_features` for each record, keyed by name."""
    return {r.name: score_features(model, r.features, text, levels, device) for r in records}
