"""Scoring raw videos with a trained model: the library behind ``vad score`` and the web UI.

:class:`Scorer` loads a checkpoint once and rebuilds the feature extractor the model was trained with (backbone,
weights, snippet settings are recorded in the checkpoint), and writes a video's ``NAME.scores.csv``,
``NAME.segments.json`` and ``NAME.png``. The resumable batch job over many videos is :mod:`vad.engine.score_job`.

Memory stays bounded for long videos: frames are decoded and encoded in batches of snippets, only the
(N, F, D) features are kept, and the model windows its graphs over N.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vad.engine.calibration import stored_threshold
from vad.engine.config import ScoreConfig
from vad.engine.inference import VideoScores, score_features
from vad.engine.report import (
    fusion_figure,
    save_figure,
    score_figure,
    segments_document,
    write_scores_csv,
    write_segments_json,
)
from vad.engine.segments import Segment, SegmentConfig, find_segments
from vad.errors import VadError, VideoError, WeightsError
from vad.features.inputs import VIDEO_EXTENSIONS, path_problem
from vad.io import fingerprint
from vad.models.checkpoint import CONFIG, WEIGHTS, LoadedModel, load_checkpoint

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
            raise VadError(f"`runtime` must be torch or onnx, got {config.runtime!r}")
        if config.runtime == "onnx" and config.zero_shot:
            raise VadError("`runtime` onnx runs an exported trained model: not with `zero_shot`")
        self.device = resolve_device(config.device)
        if config.zero_shot:
            from vad.engine.zeroshot import zero_shot_scorer_parts

            self.model_dir = Path("zero-shot")
            self.loaded, self.extractor, self.threshold = zero_shot_scorer_parts(config, self.device)
            self.model_id = "zero-shot:" + "|".join(self.loaded.prompts) + ":" + self.extractor.backbone.weights_id
        else:
            if model_dir is None:
                raise VadError("no model: give a model directory (`model`), or score with `zero_shot`")
            self.model_dir = Path(model_dir)
            self.loaded = load_checkpoint(model_dir, self.device)
            self.extractor = _extractor_for(self.loaded, config, self.model_dir)
            self.threshold = stored_threshold(self.loaded.info, config.segments.threshold)
            self.model_id = _model_id(self.model_dir, self.extractor.backbone.weights_id)
        self.onnx = None
        if config.runtime == "onnx":  # zero-shot was refused above
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
    source = f"{model_dir / CONFIG} field backbone.weights"  # where the weights came from unless `pretrained` is set
    if not config.pretrained:
        looks_like_file = os.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_file and not os.path.isfile(weights):
            raise WeightsError(f"{source}: the model was trained on {name} features from weights {weights}, "
                               f"which are not on this machine; set `pretrained` to a file of the same weights")
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
