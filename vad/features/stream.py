"""Live sources cut into snippets as frames arrive: the reader behind ``vad watch``.

A source is a webcam index (``"0"``), an rtsp/rtmp/http(s)/udp/srt URL, or a video file. Streams are read with
OpenCV's FFmpeg backend (``cv2.VideoCapture(url, cv2.CAP_FFMPEG)``) with open and read timeouts, so a stalled
stream fails a read instead of hanging; decord cannot read live streams at all. A background thread reads every
frame as it arrives (hands it to ``on_frame``, e.g. the evidence ring buffer), keeps the F sampled frames of
each snippet at the backbone's input size (with the frame after each, the motion level's flow pairs, when
asked), and puts complete snippets on a bounded queue. When the scorer falls
behind, snippets are dropped by policy and counted. A dropped or stalled stream is reopened with exponential
backoff and the gap reported through ``on_event``.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np

from vad.errors import VideoError
from vad.features.video import SnippetConfig, decode_size, plan_snippets

log = logging.getLogger(__name__)
WHEN_BEHIND = ("drop", "skip-snippets")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class ReaderConfig:
    """How a live source is opened, cut into snippets and kept alive."""

    source: str  # webcam index ("0"), stream URL, or video file
    snippets: SnippetConfig = field(default_factory=SnippetConfig)  # S frames per snippet, F of them sampled
    short_side: int | None = 224  # sampled frames are resized so their shorter side is this (the backbone input)
    queue_snippets: int = 4  # complete snippets waiting for the scorer (the queue is bounded)
    when_behind: str = "skip-snippets"  # queue full: drop = discard the new snippet, skip-snippets = the oldest
    stall_timeout_s: float = 10.0  # a stream that delivers no frame for this long is reopened
    backoff_s: float = 1.0  # first wait before reopening a lost stream; doubles per failed attempt
    max_backoff_s: float = 30.0  # longest wait between reopen attempts
    max_reconnects: int = 10  # consecutive failed (re)open attempts before giving up; -1 = never give up
    realtime: bool = False  # files only: pace at the native frame rate and drop like a live stream
    pairs: bool = False  # also keep the frame after each sampled one (flow pairs of the motion level)

    def __post_init__(self) -> None:
        if self.when_behind not in WHEN_BEHIND:
            raise VideoError(f"`when_behind` must be one of {', '.join(WHEN_BEHIND)}, got {self.when_behind!r}")
        if self.queue_snippets < 1:
            raise VideoError(f"`queue_snippets` must be >= 1, got {self.queue_snippets}")


@dataclass
class Snippet:
    """One complete snippet of a live source: its sampled frames and when its last frame arrived."""

    index: int  # k: snippets cut from the stream so far (dropped ones included)
    first_frame: int  # stream frame index of its first frame (frames count from 0 across reconnects)
    snippet_len: int  # S
    fps: float  # the source's frame rate
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB sampled frames at the backbone's input size; with ``pairs``
    # (2F, H, W, 3): each sampled frame then the one after it (the last frame of a snippet pairs with itself)
    captured: float  # wall clock (time.time) when its last frame was read
    captured_perf: float  # the same instant on time.perf_counter (for latency)

    @property
    def start_s(self) -> float:
        """Stream time of its first frame (seconds of stream received)."""
        return self.first_frame / self.fps

    @property
    def end_frame(self) -> int:
        """One past its last frame."""
        return self.first_frame + self.snippet_len


@dataclass(frozen=True)
class StreamEnd:
    """Put on the queue after the last snippet: why the reader stopped."""

    reason: str  # "end of file", "gave up after N attempts", "stopped", or the reader's error
    opened: bool  # whether the source was ever opened


@dataclass
class ReaderStats:
    """Counters of a reader (written by its thread, read by anyone)."""

    frames: int = 0  # frames read
    snippets: int = 0  # snippets cut
    dropped_snippets: int = 0  # snippets discarded because the scorer was behind
    dropped_frames: int = 0  # the frames of those snippets
    reconnects: int = 0  # successful reopens after a loss
    gap_s: float = 0.0  # wall time spent without a stream after losses


def source_kind(source: str) -> str:
    """``webcam``, ``stream`` or ``file`` (a missing file is a clear ``VideoError``)."""
    if source.isdigit():
        return "webcam"
    if urlparse(source).scheme.lower() in STREAM_SCHEMES:
        return "stream"
    if not os.path.isfile(source):
        raise VideoError(f"{source}: not a webcam index, a stream URL ({'/'.join(STREAM_SCHEMES)}) or a file")
    return "file"


def open_capture(source: str, timeout_s: float):
    """An opened ``cv2.VideoCapture`` for ``source`` (FFmpeg backend with open/read timeouts), or None."""
    import cv2

    if source.isdigit():
        cap = cv2.VideoCapture(int(source))  # a camera device: V4L2 / the platform's backend
    else:
        ms = int(timeout_s * 1000)
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    if cap.isOpened():
        return cap
    cap.release()
    return None


class StreamReader:
    """Reads a live source in a background thread into a bounded queue of :class:`Snippet` s, then a StreamEnd.

    ``on_frame(index, bgr, fps)`` sees every frame read (BGR, native size); ``on_event(dict)`` gets
    ``stream_open``, ``stream_lost`` and ``gap`` events. Both are called from the reader thread.
    """

    def __init__(self, config: ReaderConfig, on_frame: Callable[[int, np.ndarray, float], None] | None = None,
                 on_event: Callable[[dict], None] | None = None) -> None:
        self.config = config
        self.kind = source_kind(config.source)
        self.queue: queue.Queue = queue.Queue(maxsize=config.queue_snippets)
        self.stats = ReaderStats()
        self.fps = 0.0
        self._on_frame = on_frame
        self._on_event = on_event or (lambda event: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vad-stream")
        s = config.snippets.snippet_len
        offsets = plan_snippets(s, config.snippets)[0]  # (F,) positions inside a snippet
        if config.pairs:  # as `vad extract` decodes them: frame i, then i + 1 (clamped to the snippet)
            offsets = np.stack([offsets, np.minimum(offsets + 1, s - 1)], -1).reshape(-1)
        self._order = [int(o) for o in offsets]  # positions, in the order of Snippet.frames
        self._pending: dict[int, np.ndarray] = {}
        self._snippet_start = 0
        self._paced_from = 0.0

    def start(self) -> StreamReader:
        """Start reading."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait for it (a blocked read returns within the stall timeout)."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        opened, reason, cap = False, "stopped", None
        try:
            cap, reason = self._reopen(first=True)
            while cap is not None and not self._stop.is_set():
                opened = True
                ok, frame = cap.read()
                if ok:
                    self._frame(frame)
                    continue
                cap.release()
                cap = None
                if self.kind == "file":
                    reason = "end of file"
                    break
                cap, reason = self._reopen(first=False)
        except Exception as exc:  # noqa: BLE001 -- reported to the consumer as the end reason
            log.exception("stream reader failed")
            reason = f"reader failed: {type(exc).__name__}: {exc}"
        finally:
            if cap is not None:
                cap.release()
            if not self._stop.is_set():  # once stopped, nobody reads the queue: queued snippets are abandoned
                self._put(StreamEnd(reason, opened), block=True)

    def _reopen(self, first: bool) -> tuple[object | None, str]:
        """Open (or reopen after a loss) with exponential backoff; (capture, "") or (None, why not)."""
        cfg = self.config
        lost_at = time.time()
        if not first:
            self._on_event({"event": "stream_lost", "frame": self.stats.frames, "stream_s": self._stream_s()})
        self._pending, delay, failures = {}, cfg.backoff_s, 0
        while not self._stop.is_set():
            cap = open_capture(cfg.source, cfg.stall_timeout_s)
            if cap is not None:
                self._opened(cap, first, lost_at, failures)
                return cap, ""
            failures += 1
            if self.kind == "file" or 0 <= cfg.max_reconnects < failures:
                return None, f"could not open {cfg.source} after {failures} attempt(s)"
            log.warning("%s: cannot open (attempt %d), retrying in %.1f s", cfg.source, failures, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, cfg.max_backoff_s)
        return None, "stopped"

    def _opened(self, cap, first: bool, lost_at: float, failures: int) -> None:
        import cv2

        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not self.fps:
            self.fps = fps if 1.0 <= fps <= 240.0 else DEFAULT_FPS
            if self.fps != fps:
                log.warning("%s reports %.3g fps; assuming %g", self.config.source, fps, DEFAULT_FPS)
        self._snippet_start = self.stats.frames
        self._paced_from = time.perf_counter() - self.stats.frames / self.fps
        size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
        if first:
            self._on_event({"event": "stream_open", "source": self.config.source, "kind": self.kind,
                            "fps": self.fps, "size": size, "attempts": failures + 1})
            return
        gap = time.time() - lost_at
        self.stats.reconnects += 1
        self.stats.gap_s += gap
        self._on_event({"event": "gap", "frame": self.stats.frames, "stream_s": self._stream_s(),
                        "seconds": round(gap, 3), "attempts": failures + 1, "size": size})

    def _stream_s(self) -> float:
        return round(self.stats.frames / self.fps, 3) if self.fps else 0.0

    def _frame(self, bgr: np.ndarray) -> None:
        """Account one frame: evidence hook, sampling, and a complete snippet onto the queue."""
        index = self.stats.frames
        self.stats.frames += 1
        if self._on_frame is not None:
            self._on_frame(index, bgr, self.fps)
        pos = index - self._snippet_start
        if pos in self._order:
            self._pending[pos] = self._sampled(bgr)
        if pos + 1 >= self.config.snippets.snippet_len:
            self._complete(index)
        if self.kind == "file" and self.config.realtime:  # next frame due at its time on the stream's clock
            self._stop.wait(max(0.0, self._paced_from + (index + 1) / self.fps - time.perf_counter()))

    def _complete(self, last: int) -> None:
        """The snippet ending at frame ``last`` is complete: queue it (unless a reconnect cut it short)."""
        s = self.config.snippets.snippet_len
        frames, self._pending = self._pending, {}
        self._snippet_start = last + 1
        if all(o in frames for o in self._order):
            snippet = Snippet(self.stats.snippets, last + 1 - s, s, self.fps, np.stack([frames[o] for o in
                              self._order]), time.time(), time.perf_counter())
            self.stats.snippets += 1
            self._put(snippet, block=self.kind == "file" and not self.config.realtime)

    def _sampled(self, bgr: np.ndarray) -> np.ndarray:
        """BGR frame → RGB at the backbone's input size (area interpolation, as ``vad extract`` decodes)."""
        import cv2

        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if self.config.short_side:
            size = decode_size(rgb.shape[1], rgb.shape[0], self.config.short_side)
            if size != (rgb.shape[1], rgb.shape[0]):
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return rgb

    def _put(self, item: Snippet | StreamEnd, block: bool) -> None:
        """Queue ``item``; when full, wait (``block``) or drop by the ``when_behind`` policy and count it."""
        if block:
            while not self._stop.is_set():
                try:
                    self.queue.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            return  # stopped: nobody reads the queue any more
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except queue.Full:
                if self.config.when_behind == "drop" and isinstance(item, Snippet):
                    self._count_dropped(item)
                    return
                try:  # skip-snippets (or the end marker): make room by discarding the oldest snippet
                    self._count_dropped(self.queue.get_nowait())
                except queue.Empty:
                    pass

    def _count_dropped(self, item: Snippet | StreamEnd) -> None:
        if isinstance(item, Snippet):
            self.stats.dropped_snippets += 1
            self.stats.dropped_frames += item.snippet_len


def snippets_for(seconds: float, fps: float, snippet_len: int) -> int:
    """How many whole snippets cover ``seconds`` of stream at ``fps`` (at least one)."""
    return max(1, math.ceil(seconds * fps / snippet_len - 1e-9))
