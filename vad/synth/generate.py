"""A synthetic video anomaly benchmark drawn with OpenCV, written in the community's (UCF-Crime / RTFM) layout.

Scenes: a textured background, static props, camera noise and slow lighting drift, and several agents walking
smooth paths in one dominant direction (left to right). An abnormal video holds one anomaly of one class in a
random window covering 5-30 % of its frames. Some classes are invisible in any single frame by design
(``Running`` is a speed, ``WrongWay`` a direction, ``Fighting`` a stop plus jitter of a pair that also walks
together in normal videos, ``Abandoned`` an object that looks like the scene's static props but appears).

:func:`make_benchmark` writes the layout described in :mod:`vad.synth.benchmark`.

Everything is a function of ``(config, seed)``: the plan and each video's pixels come from seeded generators, so
the same seed gives byte-identical labels and ground truth and identical frames."""
from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from vad.errors import VideoError
from vad.io import atomic_path, file_mode, write_json_atomic, write_text_atomic
from vad.names import NORMAL_CLASS
from vad.synth.benchmark import (
    ANNOTATION_FILE,
    FOURCC,
    LABEL_COLUMNS,
    LABELS_FILE,
    SPLITS,
    VIDEO_EXT,
    SynthBenchmark,
    SynthConfig,
    SynthVideo,
    list_order,
    plan_benchmark,
)

# ------------------------------------------------------------------------------------------------------- render

_SHAPES = ("circle", "square", "triangle", "diamond")
_PALETTE = np.array([  # BGR agent colours
    (40, 40, 220), (220, 60, 40), (40, 200, 60), (30, 200, 230), (200, 60, 200),
    (230, 200, 40), (30, 30, 30), (235, 235, 235), (20, 120, 240), (140, 80, 20),
], dtype=np.float32)


@dataclass
class _Agent:
    """A shape following a precomputed path. ``x``, ``y``: ``(T,)`` int32 pixel centres."""

    shape: str
    colour: tuple[int, int, int]
    size: int
    x: np.ndarray
    y: np.ndarray


def _draw_shape(img: np.ndarray, shape: str, cx: int, cy: int, r: int, colour: tuple[int, int, int]) -> None:
    """Draw one filled shape of radius r centred at (cx, cy)."""
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    else:
        if shape == "triangle":
            pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
        else:  # diamond
            pts = [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
        cv2.fillConvexPoly(img, np.array(pts, dtype=np.int32), colour, cv2.LINE_AA)


class _Scene:
    """Every random choice for one video, then a cheap per-frame renderer."""

    def __init__(self, video: SynthVideo, config: SynthConfig, seed_idx: int) -> None:
        self.rng = rng = np.random.default_rng([config.seed, 1, seed_idx])
        self.video, self.config = video, config
        w, h, t_total, d = config.width, config.height, video.num_frames, config.difficulty
        self.w, self.h, self.T = w, h, t_total
        self.size_scale = 1.25 - 0.6 * d  # smaller agents when hard
        self.contrast = 1.0 - 0.6 * d  # agents' colours pulled towards the background when hard
        self.noise_sigma = 2.0 + 10.0 * d  # camera noise, grey levels
        self.background = self._background()  # (H, W, 3) float32
        self.bg_mean = self.background.reshape(-1, 3).mean(0)
        # Slow lighting drift: a gain around 1 with a period longer than the video.
        period = rng.uniform(1.5, 3.0) * t_total
        amp = rng.uniform(0.04, 0.12)
        self.gain = (1.0 + amp * np.sin(2 * np.pi * np.arange(t_total) / period + rng.uniform(0, 2 * np.pi))
                     ).astype(np.float32)
        # A bank of noise frames (drawing fresh noise for every frame would dominate the render time).
        self.noise_bank = rng.normal(0.0, self.noise_sigma, size=(8, h, w, 3)).astype(np.float32)
        self.noise_pick = rng.integers(0, len(self.noise_bank), size=t_total)
        self.props = [self._prop() for _ in range(int(rng.integers(0, 3)))]  # static boxes, always there
        self.agents: list[_Agent] = []
        self.effects: list[Callable[[np.ndarray, int], None]] = []  # drawn after agents, per frame
        n_agents = int(rng.integers(config.min_agents, config.max_agents + 1))
        for _ in range(n_agents):
            self.agents.append(self._walker())
        if rng.random() < 0.5 or video.cls == "Fighting":  # a pair walking together is normal
            self._add_pair(fight=video.cls == "Fighting")
        getattr(self, f"_anomaly_{video.cls.lower()}", lambda: None)()

    # --- scene parts
    def _background(self) -> np.ndarray:
        rng, w, h = self.rng, self.w, self.h
        base = rng.uniform(70, 170, size=3).astype(np.float32)
        coarse = rng.normal(0, 18, size=(6, 8, 3)).astype(np.float32)
        fine = rng.normal(0, 6, size=(h // 4, w // 4, 3)).astype(np.float32)
        bg = base + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) \
            + cv2.resize(fine, (w, h), interpolation=cv2.INTER_LINEAR)
        # A walkway band and a few tile lines give the texture structure.
        y0, y1 = int(h * rng.uniform(0.3, 0.45)), int(h * rng.uniform(0.75, 0.9))
        bg[y0:y1] += rng.uniform(-25, 25)
        step = int(rng.integers(12, 24))
        bg[:, ::step] -= 12
        bg[::step, :] -= 12
        return np.clip(bg, 0, 255)

    def _colour(self) -> tuple[int, int, int]:
        c = _PALETTE[int(self.rng.integers(len(_PALETTE)))]
        c = self.bg_mean + (c - self.bg_mean) * self.contrast
        return tuple(int(v) for v in np.clip(c, 0, 255))

    def _size(self, lo: float = 4, hi: float = 9) -> int:
        return max(2, round(self.rng.uniform(lo, hi) * self.size_scale))

    def _prop(self) -> tuple[int, int, int, int, tuple[int, int, int]]:
        """A static box (x, y, half-width, half-height, colour); abandoned objects look like these."""
        r = self._size(3, 6)
        x = int(self.rng.integers(r, self.w - r))
        y = int(self.rng.integers(self.h // 3, self.h - r))
        return x, y, r, max(2, int(r * self.rng.uniform(0.6, 1.0))), self._colour()

    def _path(self, speed: float, multiplier: np.ndarray | None = None, x_at: tuple[int, float] | None = None,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Integrate a walk: x advances by speed*multiplier per frame (wrapping around), y wobbles smoothly.

        ``x_at = (t, x)`` pins the (unwrapped) position at frame t. Returns x, y as ``(T,)`` int32 arrays.
        """
        rng, w, h, t_total = self.rng, self.w, self.h, self.T
        m = np.ones(t_total, dtype=np.float64) if multiplier is None else multiplier
        steps = speed * m
        x = np.concatenate([[0.0], np.cumsum(steps[:-1])])
        if x_at is None:
            x = x + rng.uniform(0, w)
        else:
            x = x - x[x_at[0]] + x_at[1]
        margin = 12
        x = np.mod(x + margin, w + 2 * margin) - margin
        y0 = rng.uniform(0.35 * h, 0.85 * h)
        amp, omega, phase = rng.uniform(1, 6), rng.uniform(0.02, 0.08), rng.uniform(0, 2 * np.pi)
        tau = np.concatenate([[0.0], np.cumsum(np.abs(m[:-1]))])  # wobble follows the distance walked
        y = y0 + amp * np.sin(omega * tau + phase)
        return x.astype(np.int32), y.astype(np.int32)

    def _walker(self, speed: float | None = None, multiplier: np.ndarray | None = None,
                x_at: tuple[int, float] | None = None) -> _Agent:
        speed = self.rng.uniform(0.8, 2.0) if speed is None else speed
        x, y = self._path(speed, multiplier, x_at)
        return _Agent(self.rng.choice(_SHAPES), self._colour(), self._size(), x, y)

    def _window_mask(self) -> np.ndarray:
        mask = np.zeros(self.T, dtype=bool)
        mask[self.video.start:self.video.end] = True
        return mask

    def _add_pair(self, fight: bool) -> None:
        """Two agents walking side by side; with ``fight`` they stop in the window and jitter in contact."""
        rng = self.rng
        speed = rng.uniform(0.8, 1.6)
        m = np.ones(self.T)
        if fight:
            m[self._window_mask()] = 0.0
        size = self._size()
        start = self.video.start if fight else 0
        x, y = self._path(speed, m, x_at=(start, rng.uniform(0.25, 0.65) * self.w) if fight else None)
        gap = 2 * size + 1
        x2 = np.mod(x + gap + 12, self.w + 24) - 12
        y2 = y.copy()
        if fight:  # jitter: both shake and push into each other
            win = self._window_mask()
            k = int(win.sum())
            jit = rng.integers(-3, 4, size=(4, k))
            pull = (np.abs(np.sin(np.arange(k) * rng.uniform(0.6, 1.2))) * size).astype(np.int32)
            x[win] += jit[0] + pull // 2
            y[win] += jit[1]
            x2[win] += jit[2] - pull // 2
            y2[win] += jit[3]
        colour = self._colour()
        self.agents.append(_Agent(rng.choice(_SHAPES), colour, size, x, y))
        self.agents.append(_Agent(rng.choice(_SHAPES), self._colour(), size, x2.astype(np.int32), y2))

    # --- anomalies (one per abnormal video, active in [start, end))
    def _anomaly_running(self) -> None:
        m = np.ones(self.T)
        m[self._window_mask()] = self.rng.uniform(4.0, 6.0)
        self.agents.append(self._walker(self.rng.uniform(1.0, 1.6), m,
                                        x_at=(self.video.start, self.rng.uniform(0.1, 0.4) * self.w)))

    def _anomaly_wrongway(self) -> None:
        m = np.ones(self.T)
        m[self._window_mask()] = -1.0  # turns round and walks against the flow
        self.agents.append(self._walker(None, m, x_at=(self.video.start, self.rng.uniform(0.5, 0.85) * self.w)))

    def _anomaly_fighting(self) -> None:
        pass  # made by _add_pair(fight=True) in __init__

    def _anomaly_abandoned(self) -> None:
        x, y, rw, rh, colour = self._prop()
        s, e = self.video.start, self.video.end

        def draw(img: np.ndarray, t: int) -> None:
            if s <= t < e:
                cv2.rectangle(img, (x - rw, y - rh), (x + rw, y + rh), colour, -1)
        self.effects.append(draw)

    def _anomaly_explosion(self) -> None:
        rng = self.rng
        cx, cy = int(rng.uniform(0.2, 0.8) * self.w), int(rng.uniform(0.3, 0.8) * self.h)
        s, e = self.video.start, self.video.end
        r_max = (0.12 + 0.12 * rng.random()) * min(self.w, self.h) * (1.3 - 0.5 * self.config.difficulty)

        def draw(img: np.ndarray, t: int) -> None:
            if not s <= t < e:
                return
            p = (t - s + 1) / (e - s)
            r = max(2, int(r_max * min(1.0, p / 0.6)))
            fade = 1.0 if p < 0.6 else 1.0 - (p - 0.6) / 0.4 * 0.7
            cv2.circle(img, (cx, cy), r, (int(40 * fade), int(140 * fade), int(255 * fade)), -1, cv2.LINE_AA)
            cv2.circle(img, (cx, cy), max(1, int(r * 0.6)), (int(200 * fade), int(250 * fade), int(255 * fade)),
                       -1, cv2.LINE_AA)
        self.effects.append(draw)

    def _anomaly_fire(self) -> None:
        rng = self.rng
        cx, cy = int(rng.uniform(0.15, 0.85) * self.w), int(rng.uniform(0.4, 0.85) * self.h)
        s, e = self.video.start, self.video.end
        base = max(3, round(rng.uniform(6, 10) * self.size_scale))
        n = e - s
        flick = rng.uniform(0.5, 1.3, size=(n, 4))  # per-frame tongue sizes
        offs = rng.integers(-base, base + 1, size=(n, 4))
        shades = rng.integers(0, 3, size=(n, 4))
        colours = ((0, 40, 230), (0, 120, 255), (40, 200, 255))  # red, orange, yellow (BGR)

        def draw(img: np.ndarray, t: int) -> None:
            if not s <= t < e:
                return
            i = t - s
            for j in range(4):
                r = max(2, int(base * flick[i, j]))
                cv2.ellipse(img, (cx + int(offs[i, j]) // 2, cy - r // 2), (max(1, r // 2), r), 0, 0, 360,
                            colours[int(shades[i, j])], -1, cv2.LINE_AA)
        self.effects.append(draw)

    # --- per frame
    def frames(self):
        """Yield the video's frames, ``(H, W, 3)`` uint8 BGR."""
        bg_u8 = self.background.astype(np.uint8)
        for t in range(self.T):
            img = bg_u8.copy()
            for x, y, rw, rh, colour in self.props:
                cv2.rectangle(img, (x - rw, y - rh), (x + rw, y + rh), colour, -1)
            for a in self.agents:
                _draw_shape(img, a.shape, int(a.x[t]), int(a.y[t]), a.size, a.colour)
            for draw in self.effects:
                draw(img, t)
            out = img.astype(np.float32)
            out *= self.gain[t]
            out += self.noise_bank[self.noise_pick[t]]
            yield np.clip(out, 0, 255).astype(np.uint8)


def render_video(video: SynthVideo, config: SynthConfig, path: str | os.PathLike) -> None:
    """Render one planned video to ``path`` (MJPG AVI) atomically; raises :class:`VideoError` if OpenCV cannot."""
    path = Path(path)
    seed_idx = int(video.name.rsplit("_", 1)[1])
    scene = _Scene(video, config, seed_idx)
    path.parent.mkdir(parents=True, exist_ok=True)
    # atomic_path's temp name ends in ".part", and OpenCV picks the container from the extension, so the temp
    # file here keeps ".avi" last.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=VIDEO_EXT, dir=path.parent)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC), float(config.fps),
                                 (config.width, config.height))
        if not writer.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open a {FOURCC} writer")
        try:
            for frame in scene.frames():
                writer.write(frame)
        finally:
            writer.release()
        os.chmod(tmp, file_mode())  # mkstemp made it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -------------------------------------------------------------------------------------------------------- write


def make_benchmark(out_dir: str | os.PathLike, config: SynthConfig, progress: bool = True) -> SynthBenchmark:
    """Render and write a whole synthetic benchmark under ``out_dir`` (layout in the module docstring)."""
    t0 = time.perf_counter()
    root = Path(out_dir)
    videos = plan_benchmark(config)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    for video in tqdm(videos, desc="synth videos", unit="video", disable=not progress):
        render_video(video, config, root / video.file)

    write_text_atomic(root / ANNOTATION_FILE, "".join(
        f"{Path(v.file).name}  {v.cls}  {v.start}  {v.end}  -1  -1\n" for v in videos))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for v in videos:
        writer.writerow([v.name, v.file, v.label, v.cls, v.split, v.num_frames, v.fps])
    write_text_atomic(root / LABELS_FILE, buf.getvalue())

    list_paths, gt_paths, counts = {}, {}, {}
    for split in SPLITS:
        members = list_order([v for v in videos if v.split == split])
        list_paths[split] = root / f"{split}.list"
        write_text_atomic(list_paths[split], "".join(f"{v.file}\n" for v in members))
        counts[split] = {c: sum(v.cls == c for v in members) for c in (NORMAL_CLASS, *config.classes)}
        if split != "train":
            gt_paths[split] = root / f"gt-{split}.npy"
            _save_npy_atomic(gt_paths[split], np.concatenate([v.frame_labels() for v in members]))

    bench = SynthBenchmark(root=root, config=config, videos=videos, annotation_path=root / ANNOTATION_FILE,
                           labels_path=root / LABELS_FILE, list_paths=list_paths, gt_paths=gt_paths,
                           seconds=time.perf_counter() - t0, counts=counts)
    write_json_atomic(root / "benchmark.json", {
        "config": asdict(config),
        "video_format": {"ext": VIDEO_EXT, "fourcc": FOURCC},
        "annotation_windows": "0-based frame indices, start inclusive, end exclusive (gt[start:end] = 1)",
        "counts": counts,
        "num_videos": len(videos),
        "num_frames": {s: int(sum(v.num_frames for v in videos if v.split == s)) for s in SPLITS},
    })
    return bench


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` atomically, without pickling."""
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
