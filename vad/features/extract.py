"""Video → multi-level features (CLIP clip, frame, patch; optical-flow motion) + prompt text features.

Decoding of the next batches of snippets, and their optical flow, run in background threads while the backbone
encodes the current one (:mod:`vad.features.decode`), so the pipeline costs little more than the encoder itself
(``bench/extract.py`` on CPU, ``bench/gpu.py`` on CUDA measure it). The motion level reuses the decoded frames:
there is never a second decode."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vad.errors import VadError
from vad.features.backbone import Backbone, load_backbone
from vad.features.config import DEFAULT_PROMPTS as DEFAULT_PROMPTS
from vad.features.config import ExtractConfig
from vad.features.decode import auto_decode_workers, decode_plan, decoded_batches
from vad.features.store import (
    TextFeatures,
    VideoFeatures,
    VideoMeta,
    feature_path,
    find_feature_file,
    load_manifest,
)
from vad.features.video import find_videos, open_video, plan_snippets
from vad.io import (
    RunReport,
    clean_stale_parts,
    failure_reason,
    fingerprint,
    one_line,
    printable,
    read_text,
    unique_stems,
    write_json_atomic,
)
from vad.names import MANIFEST_FILE, TEXT_FILE


def read_prompt_file(path: str | os.PathLike) -> tuple[str, ...]:
    """Prompts from a text file, one per line (blank lines and ``#`` comments ignored); the first is normal."""
    lines = [ln.strip() for ln in read_text(path, "prompt file").splitlines()]
    prompts = tuple(ln for ln in lines if ln and not ln.startswith("#"))
    if len(prompts) < 2:
        raise VadError(f"{path}: need at least two prompts (normal first, then anomaly classes)")
    return prompts


class FeatureExtractor:
    """Turns videos into :class:`VideoFeatures` with one loaded backbone.

    Per snippet, the F sampled frames are encoded once; the clip level is their normalised mean, the frame
    level keeps them, and the patch level is the pooled token grid of the snippet's key (middle) frame.
    """

    def __init__(self, config: ExtractConfig, backbone: Backbone | None = None) -> None:
        self.config = config
        self.backbone = backbone or load_backbone(config.backbone)

    def text_features(self) -> TextFeatures:
        """Embeddings ``(K, D)`` of the prompt set."""
        sentences = [self.config.template.format(p) for p in self.config.prompts]
        emb = self.backbone.encode_text(sentences).cpu().numpy()
        return TextFeatures(list(self.config.prompts), emb, self.backbone.name, self.backbone.weights_id,
                            [self.config.template])

    def extract(self, path: str | os.PathLike, progress: Callable[[int, int], None] | None = None) -> VideoFeatures:
        """Features of one video. ``progress(done, total)`` is called after each batch of snippets."""
        cfg = self.config
        short_side = self.backbone.image_size
        workers = 0 if cfg.prefetch <= 0 else cfg.decode_workers or auto_decode_workers(
            self.backbone.device.type, torch.get_num_threads())
        threads = 1 if workers > 1 else 0  # FFmpeg threads per reader: parallel readers want one each
        first = open_video(path, short_side, threads)  # validated here; handed to the first decode worker
        batches = None
        try:
            info, unused = first.info, [first]
            if info.backend == "opencv":  # OpenCV reads forward only: W captures would each decode the whole video
                workers = min(workers, 1)
            plan = plan_snippets(info.num_frames, cfg.snippets)  # shape = [N, F]
            n, f = plan.shape
            pooled_all = np.empty((n, f, self.backbone.embed_dim), np.float32)
            patch_all: np.ndarray | None = None
            motion_all: list[np.ndarray] = []
            open_source = lambda: unused.pop() if unused else first.reopen(threads)  # noqa: E731
            batches = decoded_batches(open_source,
                                      decode_plan(plan, info.num_frames, cfg.motion), cfg.batch_snippets,
                                      cfg.motion_config if cfg.motion else None, workers, max(cfg.prefetch, 0))
            for sl, frames, *motion in batches:
                motion_all.extend(motion)
                pooled, patches = self.encode_snippets(frames)
                pooled_all[sl] = pooled
                if patches is not None:
                    if patch_all is None:
                        patch_all = np.empty((n, *patches.shape[1:]), np.float32)
                    patch_all[sl] = patches
                if progress is not None:
                    progress(sl.stop, n)
        finally:
            if batches is not None:
                batches.close()  # stops and joins the decode threads, closes their sources (also on error)
            first.close()  # last (it owns an odd name's alias); idempotent: the first worker has closed it
        clip = clip_level(pooled_all)
        meta = VideoMeta(name=Path(path).stem, path=str(path), fps=info.fps, num_frames=info.num_frames,
                         snippet_len=cfg.snippets.snippet_len, backbone=self.backbone.name,
                         weights=self.backbone.weights_id)
        motion = np.concatenate(motion_all) if motion_all else None
        return VideoFeatures(clip=clip, meta=meta, frame=pooled_all, patch=patch_all, frame_indices=plan,
                             motion=motion, frame_times=info.timestamps)

    def encode_snippets(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Encode snippets' sampled frames ``(b, F, H, W, 3)`` uint8 → frame level ``(b, F, D)`` and the key
        (middle) frame's patch level ``(b, P, D)`` or None; shared by files (``extract``) and live streams."""
        b, f = frames.shape[:2]
        batch = torch.from_numpy(np.ascontiguousarray(frames).reshape(b * f, *frames.shape[2:]))  # [b * F, H, W, 3]
        if self.backbone.device.type == "cuda":
            batch = batch.pin_memory()
        pooled, patches = self.backbone.encode_frames(batch)
        frame_level = pooled.view(b, f, -1).cpu().numpy()
        if patches is None:
            return frame_level, None
        return frame_level, patches.view(b, f, *patches.shape[1:])[:, f // 2].cpu().numpy()


def clip_level(frame_level: np.ndarray) -> np.ndarray:
    """Clip level ``(N, D)`` from the frame level ``(N, F, D)``: the normalised mean of each snippet's frames."""
    return F.normalize(torch.from_numpy(frame_level).mean(1), dim=-1).numpy()


class ExtractReport(RunReport):
    """Outcome of an ``extract_videos`` run."""


@dataclass
class VideoOutcome:
    """What extracting one video gave: its manifest entry, and why it failed (None when it did not).

    Plain data, so a remote worker can hand it back to the process that owns the manifest."""

    name: str  # the video's output name (file stem)
    path: str  # the video file, as given
    entry: dict  # its manifest entry
    error: str | None = None  # one-line reason when the extraction failed

    @classmethod
    def failure(cls, video: Path, reason: str) -> VideoOutcome:
        """The outcome of a video that could not be extracted, for ``reason``."""
        return cls(video.stem, str(video), {"path": printable(str(video)), "status": "failed", "error": reason},
                   reason)


class ExtractJob:
    """The driving side of an extraction: inputs, manifest and report. It alone writes the manifest, so the
    per-video work (:func:`extract_one`) may run anywhere: in this loop, or in workers of another engine."""

    def __init__(self, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, config: ExtractConfig) -> None:
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.manifest = load_manifest(self.out)
        _check_same_backbone(self.manifest, config, self.out)
        self.videos = find_videos(inputs)
        if not self.videos:
            raise VadError("no input videos found")
        for folder in (self.out, feature_path(self.out, "x").parent):
            clean_stale_parts(folder)  # temp files of a run that was killed
        self.report = ExtractReport(self.out)

    def start(self, weights_id: str, text_features: Callable[[], TextFeatures]) -> list[Path]:
        """Check the backbone's weights against the directory's, write the prompt embeddings (once) and return the
        videos still to extract; the others are recorded as skipped (done before) or failed (name clash)."""
        cfg, manifest = self.config, self.manifest
        if manifest.get("weights") not in (None, weights_id):
            raise VadError(f"{self.out}: holds features from weights {manifest['weights']!r}, this run uses "
                           f"{weights_id!r}; use another output directory")
        manifest.update(backbone=cfg.backbone.name, weights=weights_id, snippet_len=cfg.snippets.snippet_len,
                        frames_per_snippet=cfg.snippets.frames_per_snippet, patch_grid=cfg.backbone.patch_grid,
                        prompts=list(cfg.prompts))
        if not (self.out / TEXT_FILE).exists():
            text_features().save(self.out / TEXT_FILE)
        pending = []
        for name, video in unique_stems(self.videos, self.report.failed):
            if _is_done(manifest["videos"].get(name, {}), find_feature_file(self.out, name), video, name, self.report):
                self.report.skipped.append(name)
            else:
                pending.append(video)
        return pending

    def record(self, outcome: VideoOutcome) -> None:
        """Enter one video's outcome in the manifest (written at once: an interrupted run resumes cleanly)."""
        self.manifest["videos"][outcome.name] = outcome.entry
        if outcome.error is None:
            self.report.written.append(outcome.name)
        else:
            self.report.failed[outcome.path] = outcome.error
        write_json_atomic(self.out / MANIFEST_FILE, self.manifest)

    def finish(self) -> ExtractReport:
        """Write the manifest a last time; the run's report."""
        write_json_atomic(self.out / MANIFEST_FILE, self.manifest)
        return self.report


def extract_videos(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, config: ExtractConfig,
                   extractor: FeatureExtractor | None = None, progress: bool = True) -> ExtractReport:
    """Extract features of every video in ``inputs`` (files, directories, globs) into ``out_dir``.

    Resumable: a video whose feature file exists, is recorded as done and has the same content is skipped. Each
    output is written atomically; a bad video is recorded in the manifest and the report, and the run goes on.
    """
    job = ExtractJob(inputs, out_dir, config)
    extractor = extractor or FeatureExtractor(config)
    pending = job.start(extractor.backbone.weights_id, extractor.text_features)
    bar = tqdm(pending, desc="extract", unit="video", disable=not progress)
    for video in bar:
        bar.set_postfix_str(printable(video.stem[:30]))
        job.record(extract_one(extractor, video, job.out))
    return job.finish()


def _is_done(entry: dict, path: Path, video: Path, name: str, report: ExtractReport) -> bool:
    """Whether ``video``'s features are already there (same content as when they were made)."""
    if entry.get("status") != "ok" or not path.exists():
        return False
    try:
        same = entry.get("fingerprint") in (None, fingerprint(video))
    except OSError:
        return False  # the extraction will name what is wrong with the file
    if not same:
        report.notes.append(one_line(f"{name}: extracting again: {video} differs from the video extracted "
                                     f"before under this name ({entry.get('path')})"))
    return same


def extract_one(extractor: FeatureExtractor, video: Path, out: Path) -> VideoOutcome:
    """Extract one video and save its features atomically under ``out``; its manifest entry, or why it failed."""
    name = video.stem
    started = time.perf_counter()
    try:
        feats = extractor.extract(video)
        feats.save(feature_path(out, name))
    except (VadError, OSError, RuntimeError, ValueError) as exc:  # decoder errors are not all VadErrors
        return VideoOutcome.failure(video, one_line(failure_reason(video, exc)))
    return VideoOutcome(name, str(video), {
        "path": printable(str(video)), "status": "ok", "fingerprint": fingerprint(video),
        "num_snippets": feats.num_snippets,
        "shapes": {lvl: list(getattr(feats, lvl).shape) for lvl in feats.levels()},
        "num_frames": feats.meta.num_frames, "fps": feats.meta.fps, "vfr": feats.frame_times is not None,
        "seconds": round(time.perf_counter() - started, 3),
    })


def _check_same_backbone(manifest: dict, config: ExtractConfig, out: Path) -> None:
    """Refuse to mix features of two backbones or snippet settings in one directory."""
    for key, want in (("backbone", config.backbone.name), ("snippet_len", config.snippets.snippet_len),
                      ("frames_per_snippet", config.snippets.frames_per_snippet),
                      ("patch_grid", config.backbone.patch_grid)):
        have = manifest.get(key)
        if have is not None and have != want:
            raise VadError(f"{out}: holds features with {key}={have}, this run asks for {want}; "
                           f"use another output directory")
