"""Scoring raw videos with a trained model: the library behind ``vad score`` and the web UI.

:class:`Scorer` loads a checkpoint once and rebuilds the feature extractor the model was trained with (backbone,
weights, snippet settings are recorded in the checkpoint). :func:`score_videos` is the resumable batch job: per
video ``NAME.scores.csv``, ``NAME.segments.json`` and ``NAME.png``, and ``summary.csv`` over the run.

Memory stays bounded for long videos: frames are decoded and encoded in batches of snippets, only the
(N, F, D) features are kept, and the model windows its graphs over N.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vad.engine.calibration import stored_threshold
from vad.engine.config import ScoreConfig
from vad.engine.inference import VideoScores, score_features
from vad.engine.report import (
    fusion_figure,
    read_summary,
    save_figure,
    score_figure,
    segments_document,
    write_scores_csv,
    write_segments_json,
    write_summary,
)
from vad.engine.segments import Segment, SegmentConfig, find_segments
from vad.errors import VadError, VideoError, WeightsError
from vad.features.inputs import VIDEO_EXTENSIONS, find_videos, path_problem
from vad.io import RunReport, clean_stale_parts, failure_reason, fingerprint, one_line, printable, unique_stems
from vad.models.checkpoint import CONFIG, WEIGHTS, LoadedModel, load_checkpoint
from vad.names import SUMMARY_FILE

log = logging.getLogger(__name__)
OUTPUT_SUFFIXES = (".scores.csv", ".segments.json", ".png")


@dataclass
class ScoredVideo:
    """One video scored: its frame scores and the segments at the config's threshold."""

    path: Path  # the video file
    scores: VideoScores  # snippet and frame scores, best prompt per snippet
    segments: list[Segment]  # abnormal segments at ``config.threshold``
    config: SegmentConfig  # how ``segments`` were cut
    seconds: float = 0.0  # wall time of extraction + scoring

    @property
    def name(self) -> str:
        """Video name (file stem): the prefix of its output files."""
        return self.scores.name


@dataclass
class ScoreReport(RunReport):
    """Outcome of a :func:`score_videos` run."""

    threshold: str = ""  # the threshold used and where it came from

    @property
    def summary_path(self) -> Path:
        """``OUT/summary.csv``."""
        return self.out_dir / SUMMARY_FILE


def output_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """``{"csv", "json", "png"}`` → where the outputs of video ``name`` go."""
    out = Path(out_dir)
    return {"csv": out / f"{name}.scores.csv", "json": out / f"{name}.segments.json", "png": out / f"{name}.png"}


class Scorer:
    """A loaded model plus the feature extractor it was trained with; scores video files.

    The segment threshold is the one calibrated and stored with the model (:mod:`vad.engine.calibration`) unless
    ``config.segments.threshold`` is given; :attr:`threshold` says which. With ``config.zero_shot`` there is no
    model directory: a zero-shot model is built from the backbone's text embeddings of the prompts
    (:func:`vad.engine.zeroshot.zero_shot_scorer_parts`).

    Thread-safe: concurrent :meth:`score` calls (web requests) run one at a time on the shared backbone.
    """

    def __init__(self, model_dir: str | os.PathLike | None, config: ScoreConfig = ScoreConfig()) -> None:
        from vad.features.backbone import resolve_device

        if config.runtime not in ("torch", "onnx"):
            raise VadError(f"runtime must be torch or onnx, got {config.runtime!r}")
        if config.runtime == "onnx" and config.zero_shot:
            raise VadError("--runtime onnx runs an exported trained model: not with --zero-shot")
        self.device = resolve_device(config.device)
        if config.zero_shot:
            from vad.engine.zeroshot import zero_shot_scorer_parts

            self.model_dir = Path("zero-shot")
            self.loaded, self.extractor, self.threshold = zero_shot_scorer_parts(config, self.device)
            self.model_id = "zero-shot:" + "|".join(self.loaded.prompts) + ":" + self.extractor.backbone.weights_id
        else:
            if model_dir is None:
                raise VadError("no model: pass --model MODEL_DIR (or --zero-shot)")
            self.model_dir = Path(model_dir)
            self.loaded = load_checkpoint(model_dir, self.device)
            self.extractor = _extractor_for(self.loaded, config, self.model_dir)
            self.threshold = stored_threshold(self.loaded.info, config.segments.threshold)
            self.model_id = _model_id(self.model_dir, self.extractor.backbone.weights_id)
        self.onnx = None
        if config.runtime == "onnx":
            if config.zero_shot:
                raise VadError("--runtime onnx needs a trained model directory; zero-shot scoring runs in torch")
            from vad.engine.export import onnx_model_for

            self.onnx = onnx_model_for(self.model_dir)
        self.config = replace(config, segments=replace(config.segments, threshold=self.threshold.value))
        self._lock = threading.Lock()

    @property
    def lock(self) -> threading.Lock:
        """Serialises use of the backbone and model: hold it to run them from another thread (live scoring)."""
        return self._lock

    def threshold_label(self, value: float) -> str:
        """How to name ``value`` to the user: the model's threshold with its source, or a chosen one."""
        if abs(value - self.threshold.value) < 1e-12:
            return self.threshold.description
        return f"{value:.4g} (chosen)"

    @property
    def prompts(self) -> list[str]:
        """The model's prompts (index 0 is the normal one)."""
        return self.loaded.prompts

    def describe(self) -> str:
        """One line about the model: architecture, size, backbone and snippet settings."""
        bb, m = self.loaded.backbone, self.loaded.model
        kind = (f"{m.config.arch} ({m.config.fusion} fusion, {m.config.attention} attention), "
                f"{m.num_parameters():,} parameters" if m.config.arch not in ("oneclass", "zeroshot")
                else f"{m.config.arch} ({m.extra_repr()})")
        return (f"{kind}, levels {'+'.join(self.loaded.levels)}; threshold {self.threshold.description}; backbone "
                f"{self.extractor.backbone.name} [{self.extractor.backbone.weights_id}], "
                f"{bb.get('snippet_len')} frames per snippet")

    def fusion_figure(self):
        """Heatmaps of the learned LEGO fusion matrices (None for variants without LEGO)."""
        weights = self.loaded.model.fusion_weights()
        return fusion_figure({k: v.numpy() for k, v in weights.items()} if weights else None)

    def score(self, path: str | os.PathLike, segments: SegmentConfig | None = None,
              progress: Callable[[int, int], None] | None = None) -> ScoredVideo:
        """Extract features of one video and score it. ``progress(done, total)`` counts snippets.

        Raises :class:`VideoError` for a file that is missing or cannot be decoded.
        """
        path = Path(path)
        problem = path_problem(path)
        if problem:
            raise VideoError(f"{path}: {problem}")
        seg_cfg = segments or self.config.segments
        started = time.perf_counter()
        with self._lock:
            feats = self.extractor.extract(path, progress=progress)
            if self.onnx is not None:
                from vad.engine.export import score_features_onnx

                scores = score_features_onnx(self.onnx, feats, self.loaded.text)
            else:
                scores = score_features(self.loaded.model, feats, self.loaded.text, self.loaded.levels, self.device)
        return ScoredVideo(path, scores, self.segments(scores, seg_cfg), seg_cfg, time.perf_counter() - started)

    def segments(self, scores: VideoScores, config: SegmentConfig) -> list[Segment]:
        """Segments of already-computed scores (no re-scoring: the web UI's threshold slider)."""
        return find_segments(scores.frames, scores.fps, config, scores.best_prompt, scores.snippet_len,
                             self.prompts, scores.times)

    @property
    def random_backbone(self) -> bool:
        """Whether this scorer's backbone is random-initialised (every output then says so)."""
        from vad.features.backbone import is_random_weights

        bb = self.loaded.backbone
        return is_random_weights(self.config.pretrained or bb.get("weights_recorded") or bb.get("weights", ""))

    def write_outputs(self, scored: ScoredVideo, out_dir: str | os.PathLike,
                      ground_truth: np.ndarray | None = None) -> dict[str, Path]:
        """Write ``NAME.scores.csv``, ``NAME.segments.json`` and ``NAME.png`` (each atomically)."""
        paths = output_paths(out_dir, scored.name)
        write_scores_csv(paths["csv"], scored.scores)
        label = self.threshold_label(scored.config.threshold)
        weights = self.loaded.model.fusion_weights()
        document = segments_document(scored.scores, scored.segments, scored.config, str(scored.path),
                                     str(self.model_dir), {k: v.numpy() for k, v in (weights or {}).items()})
        write_segments_json(paths["json"], {**document, "threshold_source": label})
        from vad.features.backbone import RANDOM_NOTE

        save_figure(paths["png"], score_figure(scored.scores, scored.segments, scored.config.threshold,
                                               ground_truth=ground_truth, threshold_label=label,
                                               subtitle=RANDOM_NOTE if self.random_backbone else None))
        return paths


def _extractor_for(loaded: LoadedModel, config: ScoreConfig, model_dir: Path):
    """The feature extractor that makes the same features the model was trained on (or a clear error)."""
    from vad.features.backbone import BackboneConfig
    from vad.features.extract import ExtractConfig, FeatureExtractor
    from vad.features.motion import MotionConfig
    from vad.features.video import SnippetConfig

    bb = loaded.backbone
    fmt = bb.get("source_format", "vadgraph")
    if fmt != "vadgraph" or not bb.get("name"):
        raise WeightsError(f"{model_dir}: this model was trained on {fmt} features made outside vadgraph, so it "
                           f"cannot score raw videos; train on features from `vad extract` to use `vad score`")
    name = config.backbone or bb["name"]
    weights = config.pretrained or bb.get("weights", "")
    source = "--pretrained" if config.pretrained else f"{model_dir / CONFIG} field backbone.weights"
    if not config.pretrained:
        looks_like_file = os.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_file and not os.path.isfile(weights):
            raise WeightsError(f"{source}: the model was trained on {name} features from weights {weights}, "
                               f"which are not on this machine; pass --pretrained PATH (the same weights)")
    elif weights != bb.get("weights"):
        log.warning("backbone weights %s differ from the ones the model was trained with (%s): scores are only "
                    "meaningful if they are the same weights", weights, bb.get("weights"))
    try:
        snippets = SnippetConfig(int(bb.get("snippet_len", 16)), int(bb.get("frames_per_snippet", 1)))
    except ValueError as exc:
        raise WeightsError(f"{model_dir}: bad snippet settings in config.json ({exc})") from exc
    extract_cfg = ExtractConfig(
        backbone=BackboneConfig(name, weights, config.device, config.precision, int(bb.get("patch_grid", 2))),
        snippets=snippets, batch_snippets=config.batch_snippets,
        motion=loaded.model.config.uses("motion"), motion_config=MotionConfig(**bb.get("motion", {})))
    try:
        extractor = FeatureExtractor(extract_cfg)
    except WeightsError as exc:
        if config.pretrained:
            raise
        raise WeightsError(f"{source} ({bb.get('weights_recorded', weights)}): {exc}") from None
    want = loaded.model.config.feature_dim
    if want and extractor.backbone.embed_dim != want:
        raise WeightsError(f"backbone {name} makes {extractor.backbone.embed_dim}-d features, the model in "
                           f"{model_dir} expects {want}-d; use the backbone it was trained with ({bb['name']})")
    return extractor


def check_upload(path: str | os.PathLike, max_mb: float) -> Path:
    """Reject an uploaded file that is not a video by extension or is larger than ``max_mb`` (clear message)."""
    p = Path(path)
    if p.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoError(f"{p.name}: not a video file type we read (use one of {', '.join(VIDEO_EXTENSIONS)})")
    size_mb = p.stat().st_size / 2**20
    if size_mb > max_mb:
        raise VideoError(f"{p.name}: {size_mb:.0f} MB is over the {max_mb:.0f} MB upload limit "
                         f"(score long videos with `vad score` instead)")
    return p


def _model_id(model_dir: Path, weights_id: str) -> str:
    """A digest of the model's files and the backbone weights it scores with: outputs of another model differ."""
    import hashlib

    digest = hashlib.blake2b(weights_id.encode("utf-8", "surrogateescape"), digest_size=10)
    for name in (CONFIG, WEIGHTS):
        digest.update(fingerprint(model_dir / name).encode())
    return digest.hexdigest()


def _settings(config: ScoreConfig) -> str:
    """The settings that change a video's outputs, as one comparable string."""
    seg = config.segments
    return (f"threshold={seg.threshold:g};min_gap_s={seg.min_gap_s:g};min_length_s={seg.min_length_s:g};"
            f"precision={config.precision};backbone={config.backbone or ''};pretrained={config.pretrained or ''}")


def _redo_reason(row: dict | None, paths: dict[str, Path], key: dict[str, str]) -> str | None:
    """Why a video must be scored (again), or None when its outputs are there and were made the same way."""
    if not row or row.get("status") != "ok":
        return "" if not row else "it failed before"
    if not all(p.exists() for p in paths.values()):
        return "some of its outputs are missing"
    for field_name, what in (("model", "a different model"), ("video_fingerprint", "different video content"),
                             ("settings", "different settings")):
        if row.get(field_name) != key[field_name]:
            had = row.get(field_name) or "not recorded"
            detail = f" ({had} -> {key[field_name]})" if field_name == "settings" else ""
            return f"its outputs were made with {what}{detail}"
    return None


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
        pending = []
        for _, video in unique_stems(self.videos, report.failed):
            name = printable(video.stem)  # as the summary stores it
            key = {"model": facts.model_id, "settings": _settings(facts.config), "video_fingerprint": ""}
            try:
                key["video_fingerprint"] = fingerprint(video) if not path_problem(video) else ""
            except OSError:
                pass  # scoring will say what is wrong with the file
            reason = _redo_reason(self.rows.get(name), output_paths(self.out, video.stem), key)
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
