"""Video decoding: open a file (decord, then OpenCV as a fallback), plan snippets, stream sampled frames.

Only the sampled frames are decoded, at a reduced resolution chosen by the caller, and frames are streamed in
batches of snippets, so memory is bounded by one batch whatever the video's length or size.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vad.errors import VideoError
from vad.features.diagnose import diagnose, first_line
from vad.features.inputs import VIDEO_EXTENSIONS, find_videos, path_problem

log = logging.getLogger(__name__)

__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "VideoSource", "SnippetConfig", "find_videos", "open_video",
           "path_problem", "plan_snippets", "iter_snippet_frames", "read_snippets", "decode_size"]



@dataclass(frozen=True)
class SnippetConfig:
    """How a video is cut into snippets."""

    snippet_len: int = 16  # S: consecutive source frames per snippet
    frames_per_snippet: int = 2  # F: frames sampled evenly inside each snippet and encoded (2: frame differs from clip)

    def __post_init__(self) -> None:
        if self.snippet_len < 1 or self.frames_per_snippet < 1:
            raise ValueError("snippet_len and frames_per_snippet must be >= 1")
        if self.frames_per_snippet > self.snippet_len:
            raise ValueError(f"frames_per_snippet ({self.frames_per_snippet}) > snippet_len ({self.snippet_len})")


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about itself."""

    path: str  # the file
    num_frames: int  # decodable frame count as reported by the backend
    fps: float  # average frame rate
    width: int  # native width in pixels
    height: int  # native height in pixels
    backend: str  # "decord", "decord+resize" (decord at native size, resized after) or "opencv"
    timestamps: np.ndarray | None = None  # (num_frames,) start time of each frame in seconds, for variable
    # frame rate streams only (None: frame i starts at i / fps)

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        if self.timestamps is not None and len(self.timestamps) > 1:
            return float(self.timestamps[-1] + (self.timestamps[-1] - self.timestamps[0]) / (len(self.timestamps) - 1))
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def plan_snippets(num_frames: int, config: SnippetConfig) -> np.ndarray:
    """Source frame indices to decode, ``(N, F)``: F evenly spaced frames inside each snippet of S frames.

    N = ceil(num_frames / S); a last, shorter snippet samples inside its own (shorter) range.
    """
    if num_frames <= 0:
        raise ValueError("num_frames must be positive")
    s, f = config.snippet_len, config.frames_per_snippet
    n = math.ceil(num_frames / s)
    starts = np.arange(n) * s
    lengths = np.minimum(s, num_frames - starts)  # (N,)
    offsets = (lengths[:, None] * (2 * np.arange(f)[None, :] + 1)) // (2 * f)  # centres of F equal parts
    return (starts[:, None] + offsets).astype(np.int64)


def decode_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to ``short_side`` (never upscaled), even sizes."""
    scale = min(1.0, short_side / min(width, height))
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


class VideoSource:
    """An opened video. Use :func:`open_video` to get one; it validates the file first.

    ``read(indices)`` returns RGB frames ``(T, H, W, 3)`` uint8 at the size chosen with ``resize_to``.
    """

    def __init__(self, info: VideoInfo, reader: object, size: tuple[int, int] | None) -> None:
        self.info = info
        self._reader = reader
        self.size = size  # (width, height) frames come out at; None = native
        self._cv_pos = 0  # OpenCV backend: index of the next frame the capture will return
        self._cv_last: np.ndarray | None = None  # OpenCV backend: frame _cv_pos - 1, RGB
        self._open_path = Path(info.path)  # what the decoders were given (an ASCII alias for odd file names)
        self._alias_dir: str | None = None  # removed on close

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Decode the frames at ``indices`` (ascending). Raises ``VideoError`` if the stream is corrupt there."""
        indices = [int(i) for i in indices]
        try:
            try:
                frames = self._read(indices)
            except Exception:
                if not self._fall_back_to_opencv():
                    raise
                frames = self._read(indices)  # decord cannot decode some valid streams (e.g. 16x16): OpenCV can
        except VideoError:
            raise
        except Exception as exc:
            raise VideoError(
                f"{self.info.path}: decoding failed near frame {indices[0]} (truncated or corrupt: "
                f"{first_line(exc)})"
            ) from exc
        if frames.shape[0] != len(indices):
            raise VideoError(f"{self.info.path}: got {frames.shape[0]} frames for {len(indices)} requested (truncated)")
        return frames

    def _read(self, indices: list[int]) -> np.ndarray:
        if self.info.backend == "decord":
            return self._reader.get_batch(indices).asnumpy()
        if self.info.backend == "decord+resize":
            return _resize_frames(self._reader.get_batch(indices).asnumpy(), self.size)
        return self._read_opencv(indices)

    def reopen(self, threads: int = 0) -> VideoSource:
        """Another reader of the same, already validated file at the same output size, without probing it again
        (one per parallel decode worker; ``threads`` as in :func:`open_video`). The original keeps owning the
        alias of an oddly named file, so close it last."""
        if self.info.backend == "opencv":
            import cv2

            reader: object = cv2.VideoCapture(str(self._open_path))
        else:
            import decord

            scaled = self.info.backend == "decord" and self.size is not None
            reader = decord.VideoReader(str(self._open_path), ctx=decord.cpu(0), num_threads=threads,
                                        **({"width": self.size[0], "height": self.size[1]} if scaled else {}))
        twin = VideoSource(self.info, reader, self.size)
        twin._open_path = self._open_path
        return twin

    def _fall_back_to_opencv(self) -> bool:
        """Switch a decord source to OpenCV after a failed read; False if already OpenCV or OpenCV cannot open it."""
        if self.info.backend == "opencv":
            return False
        fallback = _open_opencv(self._open_path, None)
        if fallback is None:
            return False
        size = self.size or (self.info.width, self.info.height)
        self._reader, self._cv_pos, self._cv_last = fallback._reader, fallback._cv_pos, fallback._cv_last
        self.info = VideoInfo(self.info.path, self.info.num_frames, self.info.fps, self.info.width, self.info.height,
                              "opencv", self.info.timestamps)
        self.size = size
        return True

    def _read_opencv(self, indices: list[int]) -> np.ndarray:
        """Frames ``indices`` read forward: a repeated index reuses the frame just decoded (plans repeat the last
        frame of a short final snippet); going further back reopens the file, since seeking back breaks some
        streams (joined MPEG-TS)."""
        import cv2

        out = []
        for idx in indices:
            if idx == self._cv_pos - 1 and self._cv_last is not None:
                out.append(self._cv_last)
                continue
            if idx < self._cv_pos:  # rare: snippet plans are ascending
                self._reader.release()
                self._reader, self._cv_pos = cv2.VideoCapture(str(self._open_path)), 0
            while self._cv_pos < idx:
                if not self._reader.grab():
                    raise VideoError(f"{self.info.path}: stream ends at frame {self._cv_pos}, expected "
                                     f"{self.info.num_frames} (truncated)")
                self._cv_pos += 1
            ok, frame = self._reader.read()
            if not ok:
                raise VideoError(f"{self.info.path}: cannot decode frame {idx} of {self.info.num_frames} (truncated)")
            self._cv_pos += 1
            self._cv_last = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            out.append(self._cv_last)
        return _resize_frames(np.stack(out), self.size)

    def close(self) -> None:
        """Release the decoder (and the alias of an oddly named file)."""
        if self.info.backend == "opencv" and self._reader is not None:
            self._reader.release()
        self._reader = None
        if self._alias_dir is not None:
            shutil.rmtree(self._alias_dir, ignore_errors=True)
            self._alias_dir = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resize_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize ``(T, H, W, 3)`` frames to ``size`` = (width, height) with area interpolation (no-op if equal)."""
    import cv2

    if size is None or (frames.shape[2], frames.shape[1]) == size:
        return frames
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def open_video(path: str | os.PathLike, short_side: int | None = None, threads: int = 0) -> VideoSource:
    """Open ``path`` with decord (decoding at reduced size), falling back to OpenCV; else a clear ``VideoError``.

    Args:
        path: the video file.
        short_side: decode so the shorter side is this many pixels (never upscaled); None keeps native size.
        threads: FFmpeg decoder threads of this reader (0: FFmpeg's choice, about one per core). Several readers
            decoding in parallel each want 1, or they oversubscribe the cores.
    """
    p = Path(path)
    problem = path_problem(p)
    if problem:
        raise VideoError(f"{p}: {problem}")
    alias_dir, target = _ascii_alias(p)
    try:
        source = _open_any(p, target, short_side, threads)
    except BaseException:
        if alias_dir is not None:
            shutil.rmtree(alias_dir, ignore_errors=True)
        raise
    source.info = dataclasses.replace(source.info, path=str(p))
    source._open_path, source._alias_dir = target, alias_dir
    return source


def _ascii_alias(p: Path) -> tuple[str | None, Path]:
    """``(temp folder, link to p)`` when ``p`` is not valid UTF-8 (decord and OpenCV crash on such names), else
    ``(None, p)``."""
    try:
        str(p).encode("utf-8")
        return None, p
    except UnicodeEncodeError:
        folder = tempfile.mkdtemp(prefix="vad-alias-")
        link = Path(folder) / ("video" + "".join(c for c in p.suffix if c.isascii() and c.isalnum() or c == "."))
        os.symlink(os.path.abspath(p), link)
        return folder, link


def _open_any(p: Path, target: Path, short_side: int | None, threads: int = 0) -> VideoSource:
    """Open ``target`` (``p`` or its alias) with decord, else OpenCV; else a ``VideoError`` saying why."""
    decord_reason = ""
    try:
        return _open_decord(target, short_side, threads)
    except VideoError as exc:
        raise VideoError(str(exc).replace(str(target), str(p))) from None
    except _OutOfOrder as exc:  # decord would interleave the pieces: OpenCV reads in file order
        source = _open_opencv(target, short_side, exc.num_frames, exc.fps)
        if source is None:
            raise VideoError(f"{p}: its frame timestamps restart (e.g. MPEG-TS files joined together), so frames "
                             f"cannot be read in order; remux it (ffmpeg -i IN -c copy OUT.mp4)") from None
        log.info("%s: frame timestamps restart; read in file order with OpenCV", p)
        return source
    except Exception as exc:  # decord raises DECORDError / RuntimeError with ffmpeg's message
        decord_reason = first_line(exc)
    source = _open_opencv(target, short_side)
    if source is not None:
        return source
    raise VideoError(f"{p}: {diagnose(p, decord_reason)}")


class _OutOfOrder(Exception):
    """decord's frame index is not in file order: the pieces of a joined stream are mixed (see _pieces_folded)."""

    def __init__(self, num_frames: int, fps: float) -> None:
        super().__init__(f"{num_frames} frames, timestamps not increasing")
        self.num_frames, self.fps = num_frames, fps


def _open_decord(p: Path, short_side: int | None, threads: int = 0) -> VideoSource:
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    probe = decord.VideoReader(str(p), ctx=decord.cpu(0), num_threads=threads)
    num_frames = len(probe)
    if num_frames == 0:
        raise VideoError(f"{p}: the video stream has zero frames")
    height, width = probe[0].shape[:2]  # also proves the first frame decodes
    fps = float(probe.get_avg_fps() or 0.0)
    fps = fps if fps > 0 else 25.0
    times = _frame_times(probe, num_frames)
    if times is not None and _pieces_folded(times, fps):
        raise _OutOfOrder(num_frames, fps)  # before a scaled reader is made for nothing
    size = None
    reader = probe
    backend = "decord"
    if short_side is not None:
        size = decode_size(width, height, short_side)
        if size != (width, height):
            try:  # decode at reduced size inside ffmpeg's scaler...
                scaled = decord.VideoReader(str(p), ctx=decord.cpu(0), width=size[0], height=size[1],
                                            num_threads=threads)
                scaled.get_batch([0])
                reader = scaled
            except Exception:  # ...unless this decord build rejects that size: decode native, resize after
                backend = "decord+resize"
    info = VideoInfo(str(p), num_frames, fps, int(width), int(height), backend, _vfr_timestamps(times, fps))
    return VideoSource(info, reader, size)


def _frame_times(reader, num_frames: int) -> np.ndarray | None:
    """Each frame's start time as the container gives it, in decord's frame order (None when unknown)."""
    try:
        ts = np.asarray(reader.get_frame_timestamp(range(num_frames)), dtype=np.float64)[:, 0]
    except Exception:  # noqa: BLE001 -- a container without usable timestamps: constant rate is assumed
        return None
    if len(ts) != num_frames or num_frames < 2 or not np.isfinite(ts).all() or np.abs(ts).max() > 1e9 or \
            np.ptp(ts) == 0:
        return None  # missing, or placeholders (some AVI and MPEG-PS files give every frame about -1e17 s)
    return ts


def _pieces_folded(times: np.ndarray, fps: float) -> bool:
    """Whether decord's frame order mixes pieces of the file: times go back, or repeat while spanning much less
    than the frames need at ``fps`` (two joined recordings whose clocks restart, sorted onto one time line).
    Repeats alone are legitimate (a frame rate above the container's clock resolution)."""
    steps = np.diff(times)
    if (steps < 0).any():
        return True
    return bool((steps == 0).any() and np.ptp(times) < 0.75 * (len(times) - 1) / fps)


def _vfr_timestamps(times: np.ndarray | None, fps: float) -> np.ndarray | None:
    """``times`` from 0 when the frame rate varies; None when it is constant (or the times are unknown)."""
    if times is None:
        return None
    num_frames = len(times)
    ts = times - times[0]
    if np.abs(ts - np.arange(num_frames) / fps).max() <= 0.5 / fps:
        return None
    return ts


def _open_opencv(p: Path, short_side: int | None, num_frames: int | None = None, fps: float | None = None
                 ) -> VideoSource | None:
    """``p`` through OpenCV; ``num_frames`` / ``fps`` when known better than the container's estimate (decord's
    count of a joined stream); None when OpenCV cannot read a first frame."""
    import cv2

    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        return None
    num_frames = num_frames or int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    ok, first = cap.read()
    if not ok or num_frames <= 0:
        cap.release()
        return None
    height, width = first.shape[:2]
    fps = fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    size = decode_size(width, height, short_side) if short_side is not None else None
    info = VideoInfo(str(p), num_frames, fps if fps > 0 else 25.0, int(width), int(height), "opencv")
    source = VideoSource(info, cap, size)
    source._cv_pos, source._cv_last = 1, cv2.cvtColor(first, cv2.COLOR_BGR2RGB)  # frame 0 is read: no seek back
    return source


def iter_snippet_frames(
    source: VideoSource, plan: np.ndarray, batch_snippets: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(snippet_slice, frames)`` batches, frames ``(b, F, H, W, 3)`` uint8, decoding only planned frames."""
    n = plan.shape[0]
    for start in range(0, n, batch_snippets):
        stop = min(n, start + batch_snippets)
        yield slice(start, stop), read_snippets(source, plan[start:stop])


def read_snippets(source: VideoSource, plan: np.ndarray) -> np.ndarray:
    """The planned frames of some snippets, plan ``(b, F)`` -> frames ``(b, F, H, W, 3)`` uint8, in one read."""
    frames = source.read(plan.reshape(-1))  # shape = [b * F, H, W, 3]
    return frames.reshape(*plan.shape, *frames.shape[1:])
