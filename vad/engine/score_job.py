"""The resumable batch job behind ``vad score``: inputs, resume keys, ``summary.csv`` and the run's report.

:class:`ScoreJob` is the driving side (it alone writes the summary); :func:`score_one` is the per-video work, which
may run in this process (:func:`score_videos`) or in workers of another engine (:mod:`vad.engine.ray_engine`). A
video's outputs are reused only when its content, the model and the settings are the ones they were made with.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vad.engine.config import ScoreConfig
from vad.engine.report import read_summary, write_summary
from vad.engine.score import Scorer, output_paths
from vad.errors import VadError
from vad.features.inputs import find_videos, path_problem
from vad.io import RunReport, clean_stale_parts, failure_reason, fingerprint, one_line, printable, unique_stems
from vad.names import SUMMARY_FILE

log = logging.getLogger(__name__)


@dataclass
class ScoreReport(RunReport):
    """Outcome of a :func:`score_videos` run."""

    threshold: str = ""  # the threshold used and where it came from

    @property
    def summary_path(self) -> Path:
        """``OUT/summary.csv``."""
        return self.out_dir / SUMMARY_FILE


def _settings(config: ScoreConfig) -> str:
    """The settings that change a video's outputs, as one comparable string."""
    seg = config.segments
    return (f"threshold={seg.threshold:g};min_gap_s={seg.min_gap_s:g};min_length_s={seg.min_length_s:g};"
            f"precision={config.precision};backbone={config.backbone or ''};pretrained={config.pretrained or ''}")


def _redo_reason(row: dict | None, paths: dict[str, Path], key: dict[str, str], video: Path) -> str | None:
    """Why a video must be scored (again), or None when its outputs are there and were made the same way. The video
    is fingerprinted (into ``key``) only when that decides it: outputs of the same model are all there."""
    if not row or row.get("status") != "ok":
        return "" if not row else "it failed before"
    if not all(p.exists() for p in paths.values()):
        return "some of its outputs are missing"
    for field_name, what in (("model", "a different model"), ("video_fingerprint", "different video content"),
                             ("settings", "different settings")):
        if field_name == "video_fingerprint":
            key[field_name] = _video_fingerprint(video)
        if row.get(field_name) != key[field_name]:
            had = row.get(field_name) or "not recorded"
            detail = f" ({had} -> {key[field_name]})" if field_name == "settings" else ""
            return f"its outputs were made with {what}{detail}"
    return None


def _video_fingerprint(video: Path) -> str:
    """The video's content fingerprint ("" for a path that cannot be read: scoring says what is wrong with it)."""
    try:
        return fingerprint(video) if not path_problem(video) else ""
    except OSError:
        return ""


@dataclass(frozen=True)
class ScorerFacts:
    """What the driving side of a scoring run needs of a loaded :class:`Scorer`: whether a video's outputs are
    current, and what to report. Plain data, so it can come from a remote worker."""

    model_id: str  # digest of the model and backbone weights (outputs of another model differ)
    config: ScoreConfig  # the scorer's config, the threshold filled in from the model
    threshold: str  # the threshold and where it came from
    random_backbone: bool  # the backbone is random-initialised (every output says so)

    @classmethod
    def of(cls, scorer: Scorer) -> ScorerFacts:
        """The facts of ``scorer``."""
        return cls(scorer.model_id, scorer.config, scorer.threshold.description, scorer.random_backbone)


@dataclass
class ScoreOutcome:
    """What scoring one video gave: its ``summary.csv`` row, and why it failed (None when it did not)."""

    path: str  # the video file, as given
    row: dict  # its summary row (``name`` is the key)
    error: str | None = None  # one-line reason when scoring failed

    @classmethod
    def failure(cls, video: Path, row: dict, reason: str) -> ScoreOutcome:
        """The outcome of a video that could not be scored, for ``reason``."""
        return cls(str(video), {**row, "status": "failed", "error": reason}, reason)


class ScoreJob:
    """The driving side of a scoring run: inputs, ``summary.csv`` and report. It alone writes the summary, so the
    per-video work (:func:`score_one`) may run anywhere: in this loop, or in workers of another engine."""

    def __init__(self, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> None:
        self.videos = find_videos(inputs)
        if not self.videos:
            raise VadError("no input videos found")
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        clean_stale_parts(self.out)  # temp files of a run that was killed
        self.rows = read_summary(self.out)
        self.report = ScoreReport(self.out)

    def start(self, facts: ScorerFacts) -> list[tuple[Path, dict]]:
        """``(video, its summary row so far)`` of each video to score (again); the others are recorded as skipped
        (outputs current) or failed (name clash), and ``report.notes`` says why a video is scored again."""
        report = self.report
        report.threshold = facts.threshold
        if facts.random_backbone:
            from vad.features.backbone import RANDOM_NOTE

            report.notes.append(f"the model's {RANDOM_NOTE}")
        pending, settings = [], _settings(facts.config)
        for _, video in unique_stems(self.videos, report.failed):
            name = printable(video.stem)  # as the summary stores it
            key = {"model": facts.model_id, "settings": settings, "video_fingerprint": ""}  # fingerprint: see score_one
            reason = _redo_reason(self.rows.get(name), output_paths(self.out, video.stem), key, video)
            if reason is None:
                report.skipped.append(name)
                continue
            if reason:
                report.notes.append(one_line(f"{name}: scoring again: {reason}"))
            pending.append((video, {"name": name, "path": printable(str(video)),
                                    "threshold": facts.config.segments.threshold, **key}))
        return pending

    def record(self, outcome: ScoreOutcome) -> None:
        """Enter one video's outcome in the summary (written at once: an interrupted run resumes cleanly)."""
        self.rows[outcome.row["name"]] = outcome.row
        if outcome.error is None:
            self.report.written.append(outcome.row["name"])
        else:
            self.report.failed[outcome.path] = outcome.error
        write_summary(self.out, self.rows)

    def finish(self) -> ScoreReport:
        """Write the summary a last time; the run's report."""
        write_summary(self.out, self.rows)
        return self.report


def score_videos(inputs: Sequence[str | os.PathLike], model_dir: str | os.PathLike | None, out_dir: str | os.PathLike,
                 config: ScoreConfig = ScoreConfig(), progress: bool = True,
                 scorer: Scorer | None = None, ground_truth: Mapping[str, np.ndarray] | None = None
                 ) -> ScoreReport:
    """Score every video in ``inputs`` (files, directories, globs) and write the outputs into ``out_dir``.

    ``ground_truth`` (video name → ``(T,)`` 0/1 frame labels), when known, is drawn on each video's plot.

    Resumable: a video is skipped when its three outputs exist and its ``summary.csv`` row says ``ok`` for the
    same video content, model and settings; otherwise it is scored (again) and ``report.notes`` says why. A bad
    video is recorded (status ``failed`` with the reason) and the run goes on. The summary is rewritten after
    every video, so an interrupted run resumes cleanly.
    """
    job = ScoreJob(inputs, out_dir)
    scorer = scorer or Scorer(model_dir, config)
    pending = job.start(ScorerFacts.of(scorer))
    bar = tqdm(pending, desc="score", unit="video", disable=not progress)
    for video, row in bar:
        label = printable(video.stem[:24])
        bar.set_postfix_str(label)
        job.record(score_one(scorer, video, job.out, row, (ground_truth or {}).get(video.stem),
                             lambda done, total, label=label: bar.set_postfix_str(f"{label} {done}/{total} snippets")))
    return job.finish()


def score_one(scorer: Scorer, video: Path, out: Path, row: dict, ground_truth: np.ndarray | None = None,
              progress: Callable[[int, int], None] | None = None) -> ScoreOutcome:
    """Score one video and write its outputs (atomically) under ``out``; ``row`` (name, path, threshold and what
    the outputs are keyed on) completed with the outcome."""
    row = {**row, "video_fingerprint": row.get("video_fingerprint") or _video_fingerprint(video)}
    try:
        scored = scorer.score(video, progress=progress)
        scorer.write_outputs(scored, out, ground_truth)
    except (VadError, RuntimeError, OSError, ValueError) as exc:  # decoder errors are not all VadErrors
        log.debug("scoring %s failed", video, exc_info=True)
        return ScoreOutcome.failure(video, row, failure_reason(video, exc))
    s = scored.scores
    return ScoreOutcome(str(video), {**row, "status": "ok", "max_score": f"{float(s.frames.max()):.4f}",
                                     "num_segments": len(scored.segments), "duration_s": f"{s.duration_s:.2f}",
                                     "error": "", "random_backbone": int(scorer.random_backbone)})
