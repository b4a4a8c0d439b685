"""Evidence clips of live alerts: a bounded ring buffer of recent frames and a recorder thread writing MP4s.

The ring keeps the last few seconds of frames as JPEG (memory is bounded by its length, not by an alert's).
A recording starts ``pre_s`` before the alert from the ring, follows the stream (no further than the scorer's
``horizon``, so it never runs past a post-roll shorter than the wait that ends an alert), and ends ``post_s``
after the alert ends; it is written to a temporary file beside the target and renamed into place only when complete.
Encoding runs in the recorder's own thread, never in the reader's or the scorer's.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vad.engine.alerts import iso_time
from vad.features.video import decode_size
from vad.io import PART_SUFFIX, file_mode

CLIP_PART_SUFFIX = PART_SUFFIX + ".mp4"  # a clip being written: OpenCV picks the container by the last suffix

log = logging.getLogger(__name__)


class FrameRing:
    """The most recent ``seconds`` (plus ``extra_frames``) of frames, JPEG-encoded, as ``(index, bytes)``;
    thread-safe. Its length is fixed when the first frame tells the frame rate."""

    def __init__(self, seconds: float, short_side: int | None = 360, quality: int = 90, extra_frames: int = 0) -> None:
        self.seconds, self.short_side, self.quality, self.extra_frames = seconds, short_side, quality, extra_frames
        self.fps = 0.0
        self._frames: deque[tuple[int, bytes]] = deque()
        self._cond = threading.Condition()

    def push(self, index: int, bgr: np.ndarray, fps: float) -> None:
        """Add frame ``index`` (BGR, any size; downscaled to ``short_side``); the oldest falls out when full."""
        import cv2

        if self.short_side:
            size = decode_size(bgr.shape[1], bgr.shape[0], self.short_side)
            if size != (bgr.shape[1], bgr.shape[0]):
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return
        with self._cond:
            if not self.fps:
                self.fps = fps
                self._frames = deque(self._frames, maxlen=max(1, math.ceil(self.seconds * fps) + self.extra_frames))
            self._frames.append((index, jpg.tobytes()))
            self._cond.notify_all()

    def since(self, start: int, stop: int | None = None) -> list[tuple[int, bytes]]:
        """Frames with ``start <= index < stop`` still held (a copy)."""
        with self._cond:
            return [f for f in self._frames if f[0] >= start and (stop is None or f[0] < stop)]

    def newest(self) -> int:
        """Index of the newest frame held (-1 when empty)."""
        with self._cond:
            return self._frames[-1][0] if self._frames else -1

    def wait(self, after: int, timeout_s: float) -> None:
        """Block until a frame newer than ``after`` arrives or ``timeout_s`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._frames) and self._frames[-1][0] > after, timeout_s)


@dataclass
class _Recording:
    """One clip being written."""

    alert: int
    path: Path
    next_frame: int  # next frame index to write
    end_frame: int | None = None  # stop before this frame (set when the alert ends)
    first_frame: int = -1  # first frame actually written
    written: int = 0
    lost: int = 0  # frames that fell out of the ring before the recorder got to them
    writer: object | None = None
    tmp: Path | None = None
    size: tuple[int, int] | None = None


class ClipRecorder:
    """Writes one MP4 per alert from a :class:`FrameRing`; ``on_done(event)`` gets a ``clip`` event per file."""

    def __init__(self, ring: FrameRing, on_done: Callable[[dict], None]) -> None:
        self.ring = ring
        self.on_done = on_done
        self.clips: list[Path] = []
        self.horizon: int | None = None  # frames before this may be written (None: all); see advance()
        self._recordings: dict[int, _Recording] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vad-clips")
        self._thread.start()

    def begin(self, alert: int, path: str | os.PathLike, start_frame: int) -> None:
        """Start recording alert ``alert`` into ``path`` from ``start_frame`` (or the oldest frame held)."""
        with self._lock:
            self._recordings[alert] = _Recording(alert, Path(path), max(0, start_frame))

    def finish(self, alert: int, end_frame: int) -> None:
        """The alert ended: the clip stops before ``end_frame`` (post-roll included) and is then finalised."""
        with self._lock:
            if alert in self._recordings:
                self._recordings[alert].end_frame = end_frame

    def advance(self, horizon: int) -> None:
        """Let recordings write frames before ``horizon`` (the scorer's progress less the alert-end delay)."""
        self.horizon = horizon

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what the ring holds for every open recording, finalise them, stop the thread."""
        self._closing.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        seen = -1
        while not self._closing.is_set():
            self.ring.wait(seen, 0.2)
            seen = self.ring.newest()
            self._pump(final=False)
        self._pump(final=True)

    def _pump(self, final: bool) -> None:
        with self._lock:
            recordings = list(self._recordings.values())
        for rec in recordings:
            limit = rec.end_frame
            if not final and self.horizon is not None:
                limit = self.horizon if limit is None else min(limit, self.horizon)
            try:
                self._write_available(rec, limit)
            except Exception as exc:  # noqa: BLE001 -- one bad clip must not stop live scoring
                log.exception("evidence clip %s failed", rec.path)
                self._drop(rec, f"{type(exc).__name__}: {exc}")
                continue
            if final or (rec.end_frame is not None and rec.next_frame >= rec.end_frame):
                self._finalise(rec)

    def _write_available(self, rec: _Recording, limit: int | None) -> None:
        import cv2

        for index, jpg in self.ring.since(rec.next_frame, limit):
            if index > rec.next_frame and rec.written:
                rec.lost += index - rec.next_frame
            frame = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
            if rec.writer is None:
                rec.size = (frame.shape[1], frame.shape[0])
                fd, tmp = tempfile.mkstemp(prefix=f".{rec.path.stem}.{os.getpid()}.",  # see clean_stale_parts
                                           suffix=CLIP_PART_SUFFIX, dir=rec.path.parent)
                os.close(fd)
                rec.tmp, rec.first_frame = Path(tmp), index
                rec.writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.ring.fps or 25.0, rec.size)
                if not rec.writer.isOpened():
                    raise OSError(f"OpenCV cannot write an mp4v clip to {tmp}")
            if (frame.shape[1], frame.shape[0]) != rec.size:  # the stream came back at another resolution
                frame = cv2.resize(frame, rec.size, interpolation=cv2.INTER_AREA)
            rec.writer.write(frame)
            rec.written += 1
            rec.next_frame = index + 1

    def _finalise(self, rec: _Recording) -> None:
        with self._lock:
            self._recordings.pop(rec.alert, None)
        if rec.writer is None:
            self._drop(rec, "no frames of the alert were held in the ring buffer")
            return
        rec.writer.release()
        os.chmod(rec.tmp, file_mode())  # mkstemp made it 0600: the clip gets the umask's mode
        os.replace(rec.tmp, rec.path)
        self.clips.append(rec.path)
        fps = self.ring.fps or 25.0
        self.on_done({"event": "clip", "alert": rec.alert, "time": iso_time(time.time()), "path": str(rec.path),
                      "start_s": round(rec.first_frame / fps, 3), "end_s": round(rec.next_frame / fps, 3),
                      "frames": rec.written, "lost_frames": rec.lost})

    def _drop(self, rec: _Recording, reason: str) -> None:
        with self._lock:
            self._recordings.pop(rec.alert, None)
        if rec.writer is not None:
            rec.writer.release()
        if rec.tmp is not None and rec.tmp.exists():
            rec.tmp.unlink()
        self.on_done({"event": "clip", "alert": rec.alert, "time": iso_time(time.time()), "path": None,
                      "error": reason})
