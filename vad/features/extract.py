"""Video → multi-level features (CLIP clip, frame, patch; optical-flow motion) + prompt text features.

Decoding of the next batch of snippets, and its optical flow, run in a background thread while the backbone
encodes the current one, so the pipeline costs little more than the encoder itself (``bench/extract.py``
measures the ratio). The motion level reuses the decoded frames: there is never a second decode."""
from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vad.errors import VadError
from vad.features.backbone import Backbone, load_backbone
from vad.features.config import DEFAULT_PROMPTS as DEFAULT_PROMPTS
from vad.features.config import ExtractConfig
from vad.features.motion import MotionEncoder
from vad.features.store import (
    TextFeatures,
    VideoFeatures,
    VideoMeta,
    feature_path,
    find_feature_file,
    load_manifest,
)
from vad.features.video import find_videos, iter_snippet_frames, open_video, plan_snippets
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
        with open_video(path, short_side=self.backbone.image_size) as source:
            plan = plan_snippets(source.info.num_frames, cfg.snippets)  # shape = [N, F]
            n, f = plan.shape
            pooled_all = np.empty((n, f, self.backbone.embed_dim), np.float32)
            patch_all: np.ndarray | None = None
            motion_all: list[np.ndarray] = []
            if cfg.motion:  # each sampled frame i is decoded with its successor i + 1, in the same pass
                decode_plan = np.stack([plan, np.minimum(plan + 1, source.info.num_frames - 1)], -1).reshape(n, -1)
                batches = with_motion(iter_snippet_frames(source, decode_plan, cfg.batch_snippets),
                                      MotionEncoder(cfg.motion_config))
            else:
                batches = iter_snippet_frames(source, plan, cfg.batch_snippets)
            for sl, frames, *motion in _prefetched(batches, cfg.prefetch):
                motion_all.extend(motion)
                pooled, patches = self.encode_snippets(frames)
                pooled_all[sl] = pooled
                if patches is not None:
                    if patch_all is None:
                        patch_all = np.empty((n, *patches.shape[1:]), np.float32)
                    patch_all[sl] = patches
                if progress is not None:
                    progress(sl.stop, n)
            info = source.info
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


def with_motion(batches: Iterator[tuple[slice, np.ndarray]], encoder: MotionEncoder
                ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Split each decoded batch ``(b, 2F, H, W, 3)`` of (frame, next frame) pairs into the F frames the encoder
    sees and the motion level ``(b, M)``: flow of each adjacent pair, averaged over the snippet's F pairs.

    Runs where the frames are decoded (the prefetch thread), so flow overlaps with the CLIP encoder. Adjacent
    frames keep flow exact for fast movers, which frames S / F apart would lose.
    """
    for sl, frames in batches:
        b, f2 = frames.shape[:2]
        pairs = frames.reshape(b * f2 // 2, 2, *frames.shape[2:])
        motion = encoder.snippets(pairs, chain=False).reshape(b, f2 // 2, -1).mean(1)
        yield sl, np.ascontiguousarray(frames[:, 0::2]), motion


def _prefetched(batches: Iterator, depth: int) -> Iterator:
    """Run ``batches`` in a background thread, ``depth`` items ahead; re-raise its errors in the caller."""
    if depth <= 0:
        yield from batches
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in batches:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, raised there
            q.put(exc)

    worker = threading.Thread(target=produce, daemon=True, name="vad-decode")
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        _drain(q, worker)


def _drain(q: queue.Queue, worker: threading.Thread) -> None:
    """Empty ``q`` until ``worker`` ends (it may be blocked on a full queue)."""
    while worker.is_alive():
        try:
            q.get_nowait()
        except queue.Empty:
            worker.join(timeout=0.05)


class ExtractReport(RunReport):
    """Outcome of an ``extract_videos`` run."""


def extract_videos(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, config: ExtractConfig,
                   extractor: FeatureExtractor | None = None, progress: bool = True) -> ExtractReport:
    """Extract features of every video in ``inputs`` (files, directories, globs) into ``out_dir``.

    Resumable: a video whose feature file exists, is recorded as done and has the same content is skipped. Each
    output is written atomically; a bad video is recorded in the manifest and the report, and the run goes on.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out)
    _check_same_backbone(manifest, config, out)
    videos = find_videos(inputs)
    if not videos:
        raise VadError("no input videos found")
    for folder in (out, feature_path(out, "x").parent):
        clean_stale_parts(folder)  # temp files of a run that was killed
    report = ExtractReport(out)
    extractor = extractor or FeatureExtractor(config)
    if manifest.get("weights") not in (None, extractor.backbone.weights_id):
        raise VadError(f"{out}: holds features from weights {manifest['weights']!r}, this run uses "
                       f"{extractor.backbone.weights_id!r}; use another --out directory")
    manifest.update(backbone=config.backbone.name, weights=extractor.backbone.weights_id,
                    snippet_len=config.snippets.snippet_len, frames_per_snippet=config.snippets.frames_per_snippet,
                    patch_grid=config.backbone.patch_grid, prompts=list(config.prompts))
    text_path = out / TEXT_FILE
    if not text_path.exists():
        extractor.text_features().save(text_path)
    entries: dict = manifest["videos"]
    bar = tqdm(videos, desc="extract", unit="video", disable=not progress)
    for name, video in unique_stems(bar, report.failed):
        bar.set_postfix_str(printable(name[:30]))
        if _is_done(entries.get(name, {}), find_feature_file(out, name), video, name, report):
            report.skipped.append(name)
            continue
        _extract_one(extractor, video, out, entries, report)
        write_json_atomic(out / MANIFEST_FILE, manifest)  # after every video: an interrupted run resumes cleanly
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return report


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


def _extract_one(extractor: FeatureExtractor, video: Path, out: Path, entries: dict, report: ExtractReport) -> None:
    """Extract and save one video, recording the outcome in the manifest entries and the report."""
    name = video.stem
    started = time.perf_counter()
    try:
        feats = extractor.extract(video)
        feats.save(feature_path(out, name))
    except (VadError, OSError, RuntimeError, ValueError) as exc:  # decoder errors are not all VadErrors
        reason = one_line(failure_reason(video, exc))
        entries[name] = {"path": printable(str(video)), "status": "failed", "error": reason}
        report.failed[str(video)] = reason
        return
    entries[name] = {
        "path": printable(str(video)), "status": "ok", "fingerprint": fingerprint(video),
        "num_snippets": feats.num_snippets,
        "shapes": {lvl: list(getattr(feats, lvl).shape) for lvl in feats.levels()},
        "num_frames": feats.meta.num_frames, "fps": feats.meta.fps, "vfr": feats.frame_times is not None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    report.written.append(name)


def _check_same_backbone(manifest: dict, config: ExtractConfig, out: Path) -> None:
    """Refuse to mix features of two backbones or snippet settings in one directory."""
    for key, want in (("backbone", config.backbone.name), ("snippet_len", config.snippets.snippet_len),
                      ("frames_per_snippet", config.snippets.frames_per_snippet),
                      ("patch_grid", config.backbone.patch_grid)):
        have = manifest.get(key)
        if have is not None and have != want:
            raise VadError(f"{out}: holds features with {key}={have}, this run asks for {want}; "
                           f"use another --out directory")
