"""Frame scores → abnormal segments: runs above a threshold, short gaps merged, short runs dropped.

Pure functions over numpy arrays; frame ranges are half-open, ``[start, end)``, as in the ground truth files.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vad.errors import VadError


@dataclass(frozen=True)
class SegmentConfig:
    """How abnormal segments are cut out of a frame-score curve."""

    threshold: float | None = None  # a frame is abnormal when its score is >= threshold (None: the model's stored one)
    min_gap_s: float = 1.0  # two runs closer than this (seconds) are merged into one segment
    min_length_s: float = 0.5  # segments shorter than this (seconds, after merging) are dropped

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise VadError(f"`threshold` must be in [0, 1], got {self.threshold}")
        if self.min_gap_s < 0 or self.min_length_s < 0:
            raise VadError(f"`min_gap_s` and `min_length_s` must be >= 0, got {self.min_gap_s}, {self.min_length_s}")

    def frames(self, fps: float) -> tuple[int, int]:
        """``(min_gap, min_length)`` in frames at ``fps`` (at least 1 frame of length)."""
        fps = fps if fps > 0 else 1.0
        return round(self.min_gap_s * fps), max(1, round(self.min_length_s * fps))


@dataclass(frozen=True)
class Segment:
    """One abnormal segment of a video."""

    start_frame: int  # first abnormal frame (0-based)
    end_frame: int  # one past the last frame
    start_s: float  # start time of start_frame (start_frame / fps at a constant frame rate)
    end_s: float  # start time of end_frame (end_frame / fps at a constant frame rate)
    peak_score: float  # highest frame score inside
    mean_score: float  # mean frame score inside (gaps that were merged count too)
    peak_frame: int  # frame of the peak score (the first one if tied)
    prompt: str | None  # best-matching anomaly prompt (majority over the segment's snippets), None without prompts
    prompt_index: int  # index into the model's prompt list, -1 without prompts

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        """JSON-ready dict (seconds rounded to milliseconds, scores to 4 decimals)."""
        d = asdict(self)
        for key in ("start_s", "end_s"):
            d[key] = round(d[key], 3)
        for key in ("peak_score", "mean_score"):
            d[key] = round(d[key], 4)
        return d


def runs_above(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Maximal runs ``[start, end)`` of frames with ``scores >= threshold``. ``scores``: ``(T,)``."""
    above = np.asarray(scores, dtype=np.float64).reshape(-1) >= threshold
    if not above.any():
        return []
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def merge_runs(runs: Sequence[tuple[int, int]], min_gap: int) -> list[tuple[int, int]]:
    """Merge sorted, disjoint runs whose gap (frames between them) is shorter than ``min_gap``."""
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < min_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def drop_short(runs: Sequence[tuple[int, int]], min_length: int) -> list[tuple[int, int]]:
    """Keep runs of at least ``min_length`` frames."""
    return [(s, e) for s, e in runs if e - s >= min_length]


def segment_prompt(best_prompt: np.ndarray | None, snippet_len: int, start: int, end: int,
                   peak_frame: int) -> int:
    """The prompt index most snippets of frames ``[start, end)`` match; ties go to the peak snippet's prompt.

    ``best_prompt``: ``(N,)`` per-snippet prompt index (-1 = none). Returns -1 when there is none.
    """
    if best_prompt is None or len(best_prompt) == 0:
        return -1
    last = len(best_prompt) - 1
    snippets = best_prompt[min(start // snippet_len, last): min((end - 1) // snippet_len, last) + 1]
    votes = Counter(int(p) for p in snippets if p >= 0)
    if not votes:
        return -1
    top = max(votes.values())
    peak = int(best_prompt[min(peak_frame // snippet_len, last)])
    if votes.get(peak) == top:
        return peak
    return min(p for p, c in votes.items() if c == top)


def find_segments(frame_scores: np.ndarray, fps: float, config: SegmentConfig = SegmentConfig(),
                  best_prompt: np.ndarray | None = None, snippet_len: int = 16,
                  prompts: Sequence[str] = (), times: np.ndarray | None = None) -> list[Segment]:
    """Abnormal segments of one video, in time order.

    Args:
        frame_scores: ``(T,)`` per-frame anomaly scores in [0, 1].
        fps: frames per second (for the times in seconds).
        config: threshold (None: 0.5; :class:`vad.engine.score.Scorer` fills in the model's), minimum gap and
            minimum length.
        best_prompt: ``(N,)`` per-snippet index of the best-matching prompt (``VideoScores.best_prompt``).
        snippet_len: S, frames per snippet (maps frames to snippets for ``best_prompt``).
        prompts: the model's prompt texts, indexed by ``best_prompt``.
        times: ``(T,)`` start of each frame in seconds (variable frame rate); None: frame i starts at i / fps.

    Runs of frames ``>= threshold`` are merged across gaps shorter than ``min_gap_s``, then segments shorter
    than ``min_length_s`` are dropped. The segments are disjoint and lie inside ``[0, T)``.
    """
    scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
    min_gap, min_length = config.frames(fps)
    rate = fps if fps > 0 else 1.0
    if times is None or len(times) != len(scores) or len(scores) < 2:
        times = np.arange(len(scores)) / rate
        last = 1.0 / rate
    else:
        last = times[-1] - times[-2]  # the last frame lasts as long as the one before it
    edges = np.append(np.asarray(times, dtype=np.float64), times[-1] + last if len(times) else 0.0)
    segments = []
    threshold = 0.5 if config.threshold is None else config.threshold
    for start, end in drop_short(merge_runs(runs_above(scores, threshold), min_gap), min_length):
        inside = scores[start:end]
        peak = start + int(inside.argmax())
        idx = segment_prompt(best_prompt, max(1, snippet_len), start, end, peak)
        text = prompts[idx] if 0 <= idx < len(prompts) else None
        segments.append(Segment(start, end, float(edges[start]), float(edges[end]), float(inside.max()),
                                float(inside.mean()), peak, text, idx if text is not None else -1))
    return segments
