"""Motion level: a fixed-size optical-flow summary per snippet, ``(N, F, H, W, 3)`` frames -> ``(N, M)``.

CLIP features see appearance, not speed; this level adds how much and which way things move, computed from
the frames extraction already decodes. Flow runs on small grayscale frames (short side ``MotionConfig.size``
px), so it costs about a millisecond per frame pair with DIS ultrafast (``python -m bench.motion_cost``).

Vector layout (:func:`motion_layout`); speeds are px per *source* frame at the reduced size, y points down:

* ``magnitude`` (6): log(x + eps) of mean, std, p90, p99, max of per-pixel speed and of the moving fraction
* ``mean_flow`` (2): signed log of the mean (dx, dy)
* ``orientation`` (bins): speed-weighted direction histogram, bin 0 centred on +x (rightwards), then turning
  towards +y (bin bins/4 is downwards); sums to 1, or all 0 when nothing moves
* ``grid`` (2 * grid * grid): signed log of the mean (dx, dy) per cell, cells row-major, dx/dy interleaved

Statistics are averaged over the snippet's frame pairs before the logs; signed log is
sign(x) * log1p(|x| / eps).
"""
from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np

from vad.features.config import MotionConfig

_DIS_PRESETS = {"dis": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST}
_NUM_MAGNITUDE = 6  # mean, std, p90, p99, max, moving fraction
_PERCENTILES = (90.0, 99.0)


def motion_layout(config: MotionConfig) -> dict[str, slice]:
    """Name -> slice of the motion vector: magnitude, mean_flow, orientation, grid (in that order)."""
    sizes = {"magnitude": _NUM_MAGNITUDE, "mean_flow": 2, "orientation": config.bins,
             "grid": 2 * config.grid**2}
    out, start = {}, 0
    for name, n in sizes.items():
        out[name] = slice(start, start + n)
        start += n
    return out


def motion_dim(config: MotionConfig) -> int:
    """M, the length of one snippet's motion vector (24 for the default config)."""
    return motion_layout(config)["grid"].stop


def reduced_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(width, height) for cv2.resize with the short side at ``size`` px, aspect ratio kept."""
    scale = size / min(height, width)
    return max(size, round(width * scale)), max(size, round(height * scale))


def _check_frames(frames: np.ndarray, ndim: int, name: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != ndim or frames.shape[-1] != 3 or 0 in frames.shape[-3:-1]:
        raise ValueError(f"{name} must be uint8 RGB with {ndim} dims (..., H, W, 3), got {frames.dtype} "
                         f"{frames.shape}")
    return frames


class MotionEncoder:
    """Optical-flow summaries of snippets. Holds one cv2 flow object: not thread-safe, use one per thread."""

    def __init__(self, config: MotionConfig = MotionConfig()) -> None:
        self.config = config
        self.dim = motion_dim(config)
        self._layout = motion_layout(config)
        preset = _DIS_PRESETS.get(config.method)
        self._dis = None if preset is None else cv2.DISOpticalFlow_create(preset)
        if self._dis is not None:
            # flow at full reduced size (presets stop at 1/4 size; OpenCV also lowers this setting in place
            # for small frames, so leaving it would make results depend on earlier calls' frame sizes)
            self._dis.setFinestScale(0)

    def snippet(self, frames: np.ndarray, previous_frame: np.ndarray | None = None,
                frame_gap: float = 1.0) -> np.ndarray:
        """``(F, H, W, 3)`` uint8 -> ``(M,)`` float32 over the F - 1 pairs (+1 with ``previous_frame``).

        ``previous_frame`` ``(H, W, 3)`` is the frame sampled just before (the previous snippet's last one);
        ``frame_gap`` is the number of source frames between consecutive sampled frames, so speeds are per
        source frame. With no pair at all (F = 1, no previous frame) the vector is that of no motion.
        """
        frames = _check_frames(frames, 4, "frames")
        return self.snippets(frames[None], previous_frame, frame_gap)[0]

    def snippets(self, frames: np.ndarray, previous_frame: np.ndarray | None = None,
                 frame_gap: float = 1.0, chain: bool = True) -> np.ndarray:
        """``(N, F, H, W, 3)`` uint8 -> ``(N, M)`` float32; each snippet is chained to the one before.

        The first snippet pairs with ``previous_frame`` ``(H, W, 3)`` when given (pass the last frame of the
        previous batch to chain batches). If it has no pair (F = 1, no previous frame) and N > 1, it copies
        the second snippet's vector rather than claiming "no motion" at the start of every video.
        ``frame_gap``: source frames between consecutive sampled frames (S / F for ``plan_snippets``).
        ``chain=False`` uses only pairs inside each snippet. Flow loses fast movers over large gaps (DIS: a
        6 px/frame disc at 224 px beyond gap 2, see the bench), so with S = 16 prefer decoding frame i + 1
        next to each sampled frame i and passing those pairs with ``chain=False, frame_gap=1``.
        """
        frames = _check_frames(frames, 5, "frames")
        if not frame_gap > 0:
            raise ValueError(f"frame_gap must be > 0, got {frame_gap}")
        if not chain and previous_frame is not None:
            raise ValueError("previous_frame needs chain=True")
        n, f, h, w = frames.shape[:4]
        prev = None if previous_frame is None else self._previous_gray(previous_frame, (h, w, 3))
        grays = self._gray(frames.reshape(n * f, h, w, 3))
        flows, owner = [], []  # every frame pair's flow, and the snippet it belongs to
        for i in range(n):
            chunk = grays[i * f:(i + 1) * f]
            for a, b in pairwise(chunk if prev is None else [prev, *chunk]):
                flows.append(self._flow(a, b))
                owner.append(i)
            prev = chunk[-1] if chain else None
        if not n:
            return np.zeros((0, self.dim), np.float32)
        raws = self._raw(flows, np.asarray(owner, np.int64), n, float(frame_gap))
        if n > 1 and raws[0] is None:
            raws[0] = raws[1]
        return np.stack([self._finish(r) for r in raws])

    def _previous_gray(self, frame: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """Checked ``(H, W, 3)`` previous frame -> grayscale at the reduced size."""
        frame = _check_frames(frame, 3, "previous_frame")
        if frame.shape != shape:
            raise ValueError(f"previous_frame shape {frame.shape} != frame shape {shape}")
        return self._gray(frame[None])[0]

    def _gray(self, frames: np.ndarray) -> list[np.ndarray]:
        """``(T, H, W, 3)`` uint8 RGB -> T grayscale uint8 frames at the reduced size."""
        h, w = frames.shape[1:3]
        dsize = reduced_size(h, w, self.config.size)
        interp = cv2.INTER_AREA if min(h, w) > self.config.size else cv2.INTER_LINEAR
        grays = (cv2.cvtColor(np.ascontiguousarray(fr), cv2.COLOR_RGB2GRAY) for fr in frames)
        return [cv2.resize(g, dsize, interpolation=interp) for g in grays]

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Dense flow (h, w, 2) float32 from grayscale ``a`` to ``b``, px per sampled-frame step."""
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)

    def _raw(self, flows: list[np.ndarray], owner: np.ndarray, n: int, gap: float) -> list[np.ndarray | None]:
        """Linear statistics of each snippet: the mean over its pairs' rows of :meth:`_pair_stats`; None for a
        snippet with no pair. One vectorised pass over all pairs: few Python calls, so decode threads scale."""
        out: list[np.ndarray | None] = [None] * n
        if not flows:
            return out
        stats = self._pair_stats(np.stack(flows), gap)  # (P, dim)
        sums = np.zeros((n, self.dim))
        np.add.at(sums, owner, stats)
        counts = np.bincount(owner, minlength=n)
        for i in np.flatnonzero(counts):
            out[i] = sums[i] / counts[i]
        return out

    def _pair_stats(self, flows: np.ndarray, gap: float) -> np.ndarray:
        """Linear (pre-log) statistics of flow fields ``(P, h, w, 2)`` -> ``(P, dim)``, laid out like the motion
        vector."""
        cfg = self.config
        p = flows.shape[0]
        flows = np.nan_to_num(flows, nan=0.0, posinf=0.0, neginf=0.0) / np.float32(gap)
        dx, dy = flows[..., 0].reshape(p, -1), flows[..., 1].reshape(p, -1)  # (P, h * w)
        speed = np.hypot(dx, dy)
        p90, p99 = np.percentile(speed, _PERCENTILES, axis=1)
        magnitude = [speed.mean(1), speed.std(1), p90, p99, speed.max(1), np.mean(speed > cfg.moving, axis=1)]
        direction = np.rint(np.arctan2(dy, dx) * (cfg.bins / (2 * np.pi))).astype(np.int64) % cfg.bins
        direction += np.arange(p)[:, None] * cfg.bins  # one histogram per pair in one bincount
        hist = np.bincount(direction.ravel(), weights=speed.ravel(), minlength=p * cfg.bins).reshape(p, cfg.bins)
        cells = np.stack([cv2.resize(f, (cfg.grid, cfg.grid), interpolation=cv2.INTER_AREA).reshape(-1)
                          for f in flows])
        return np.column_stack([*magnitude, dx.mean(1), dy.mean(1), hist / speed.shape[1], cells]).astype(np.float64)

    def _finish(self, raw: np.ndarray | None) -> np.ndarray:
        """Linear statistics (None: no motion) -> the float32 motion vector (logs, normalised histogram)."""
        lay, eps = self._layout, self.config.eps
        raw = np.zeros(self.dim) if raw is None else raw
        out = np.empty(self.dim)
        out[lay["magnitude"]] = np.log(np.maximum(raw[lay["magnitude"]], 0.0) + eps)
        for name in ("mean_flow", "grid"):
            x = raw[lay[name]]
            out[lay[name]] = np.sign(x) * np.log1p(np.abs(x) / eps)
        hist = raw[lay["orientation"]]
        total = hist.sum()
        out[lay["orientation"]] = hist / total if total > eps else 0.0
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
