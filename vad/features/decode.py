"""Decoding snippet batches (and their optical flow) ahead of the encoder, in parallel and in order.

On a GPU the CLIP encoder takes thousands of frames per second while one decode thread gives a few hundred
(``python -m bench.gpu``: 377 frames/s pipeline vs 6,155 bare encoder on an H100, ViT-B-16), so extraction
was CPU-bound. Here W worker threads each hold their own decoder (a :class:`VideoSource` per thread: decord
readers are not shared) and their own :class:`MotionEncoder` (cv2 flow objects are not thread-safe), decode
whole batches of snippets, and hand them back in snippet order with at most ``W + depth`` batches in flight,
so memory stays bounded by that many batches. decord and OpenCV release the GIL while they decode and
compute flow, so threads scale with cores, as long as each library keeps to one thread per worker: with several
workers each reader gets one FFmpeg thread (the caller's ``open_source`` does that) and OpenCV's own thread pool
is set to one thread while any such run goes on (``cv2.setNumThreads`` is process-wide; the count from before the
first run comes back after the last).
``python -m bench.decode_scaling`` measures it: on a 16-core H100 host, 8 workers decode 2.6x as fast as one;
beyond that the Python half of the flow summaries holds the GIL.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from vad.features.motion import MotionConfig, MotionEncoder
from vad.features.video import VideoSource, read_snippets

Batch = tuple  # (slice, frames (b, F, H, W, 3) uint8) or (slice, frames, motion (b, M) float32)


_CV2_LOCK = threading.Lock()
_cv2_runs = [0, 0]  # parallel runs now using OpenCV single-threaded, OpenCV's thread count before the first


@contextlib.contextmanager
def _opencv_single_threaded() -> Iterator[None]:
    """OpenCV's process-wide pool at one thread while any parallel decode runs; the previous count comes back when
    the last one ends (so overlapping runs cannot leave it at one)."""
    import cv2

    with _CV2_LOCK:
        if _cv2_runs[0] == 0:
            _cv2_runs[1] = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv2_runs[0] += 1
    try:
        yield
    finally:
        with _CV2_LOCK:
            _cv2_runs[0] -= 1
            if _cv2_runs[0] == 0:
                cv2.setNumThreads(_cv2_runs[1])


def auto_decode_workers(device_type: str, cpu_count: int | None = None) -> int:
    """Decode threads when the config says 0 (auto): on CUDA all but two of the process's cores (one feeds the
    GPU), at most 8; on CPU one, since the encoder itself uses every core and more decoders would only compete
    with it. ``cpu_count``: the cores this process may use (its torch threads: a Ray actor's share, not the
    node's); default ``os.cpu_count()``."""
    if device_type != "cuda":
        return 1
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, min(8, cores - 2))


def decode_plan(plan: np.ndarray, num_frames: int, motion: bool) -> np.ndarray:
    """Frame indices to decode per snippet: the plan ``(N, F)``, or with ``motion`` each sampled frame i followed
    by its successor i + 1, ``(N, 2F)``, so flow sees adjacent frames from the same single decode."""
    if not motion:
        return plan
    n = plan.shape[0]
    return np.stack([plan, np.minimum(plan + 1, num_frames - 1)], -1).reshape(n, -1)


def split_motion(frames: np.ndarray, encoder: MotionEncoder) -> tuple[np.ndarray, np.ndarray]:
    """A decoded batch ``(b, 2F, H, W, 3)`` of (frame, next frame) pairs -> the F frames the encoder sees
    ``(b, F, H, W, 3)`` and the motion level ``(b, M)``: flow of each pair, averaged over the snippet's F pairs."""
    b, f2 = frames.shape[:2]
    pairs = frames.reshape(b * f2 // 2, 2, *frames.shape[2:])
    motion = encoder.snippets(pairs, chain=False).reshape(b, f2 // 2, -1).mean(1)
    return np.ascontiguousarray(frames[:, 0::2]), motion


class _Worker:
    """What one decode thread holds: its own opened video and flow encoder, made on first use."""

    def __init__(self, open_source: Callable[[], VideoSource], motion: MotionConfig | None) -> None:
        self.source = open_source()
        self.motion = MotionEncoder(motion) if motion is not None else None

    def batch(self, plan: np.ndarray, start: int, stop: int) -> Batch:
        frames = read_snippets(self.source, plan[start:stop])  # (b, F', H, W, 3)
        if self.motion is None:
            return slice(start, stop), frames
        return (slice(start, stop), *split_motion(frames, self.motion))


def decoded_batches(open_source: Callable[[], VideoSource], plan: np.ndarray, batch_snippets: int,
                    motion: MotionConfig | None, workers: int, depth: int) -> Iterator[Batch]:
    """Yield the batches of ``plan`` (from :func:`decode_plan`) in order: ``(slice, frames)`` or, with
    ``motion``, ``(slice, frames, motion)``. ``workers`` threads decode ahead, ``workers + depth`` batches at
    most in flight; ``workers=0`` decodes in the caller's thread (no concurrency at all). Each worker opens its
    own source with ``open_source()``; all are closed when the iterator ends, also on error or early exit.
    A worker's error is raised here, at its batch."""
    starts = iter(range(0, plan.shape[0], batch_snippets))
    window = lambda s: (s, min(plan.shape[0], s + batch_snippets))  # noqa: E731 (a one-line helper)
    if workers <= 0:
        worker = _Worker(open_source, motion)
        try:
            for start in starts:
                yield worker.batch(plan, *window(start))
        finally:
            worker.source.close()
        return
    local, opened, lock = threading.local(), [], threading.Lock()

    def task(start: int) -> Batch:
        if not hasattr(local, "worker"):
            local.worker = _Worker(open_source, motion)
            with lock:
                opened.append(local.worker)
        return local.worker.batch(plan, *window(start))

    # W workers x OpenCV's per-core pool would oversubscribe the cores
    with _opencv_single_threaded() if workers > 1 else contextlib.nullcontext():
        pool = ThreadPoolExecutor(workers, thread_name_prefix="vad-decode")
        pending: deque[Future] = deque(pool.submit(task, s) for _, s in zip(range(workers + depth), starts))
        try:
            while pending:
                batch = pending.popleft().result()
                pending.extend(pool.submit(task, s) for _, s in zip(range(1), starts))
                yield batch
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            for worker in opened:
                worker.source.close()
