"""The synthetic benchmark's plan, layout and labels (a leaf: no rendering, no OpenCV).

Layout written by :func:`vad.synth.generate.make_benchmark` under ``OUT``::

    videos/<Class>_<idx>.avi            MJPG in AVI: every frame a key frame, so decord seeks exactly
    Temporal_Anomaly_Annotation.txt     "<file>  <Class>  <start1>  <end1>  -1  -1" (0-based, end exclusive)
    labels.csv                          name,file,label,class,split,num_frames,fps
    train.list / val.list / test.list   video paths relative to OUT, abnormal videos first
    gt-val.npy / gt-test.npy            frame-level 0/1 (uint8) of the split's videos in list order
    benchmark.json                      the config and a summary
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vad.errors import SynthError
from vad.io import one_line, read_csv_table, read_text
from vad.names import NORMAL_CLASS

ANOMALY_CLASSES: tuple[str, ...] = ("Running", "Fighting", "Explosion", "Abandoned", "WrongWay", "Fire")
SPLITS: tuple[str, ...] = ("train", "val", "test")
VIDEO_EXT = ".avi"
FOURCC = "MJPG"
LABELS_FILE = "labels.csv"
ANNOTATION_FILE = "Temporal_Anomaly_Annotation.txt"
LABEL_COLUMNS = ("name", "file", "label", "class", "split", "num_frames", "fps")


@dataclass(frozen=True)
class SynthConfig:
    """How many videos, how they look, and how they are split."""

    videos: int = 60  # total number of videos (>= 6: each split needs a normal and an abnormal video)
    seed: int = 0  # master seed: plan, splits, windows and every pixel derive from it
    width: int = 160  # frame width in pixels
    height: int = 120  # frame height in pixels
    fps: float = 15.0  # frames per second written into the video files
    min_frames: int = 96  # shortest video, frames
    max_frames: int = 192  # longest video, frames (inclusive)
    abnormal_fraction: float = 0.5  # share of videos that hold an anomaly
    val_fraction: float = 0.15  # share of each group (normal / abnormal) in the validation split
    test_fraction: float = 0.4  # share of each group in the test split; the rest is training
    min_window: float = 0.05  # shortest anomaly window, as a fraction of the video's frames
    max_window: float = 0.30  # longest anomaly window, as a fraction of the video's frames
    min_agents: int = 3  # fewest walking agents in a scene
    max_agents: int = 6  # most walking agents in a scene (inclusive)
    difficulty: float = 0.5  # 0 easy .. 1 hard: smaller agents, lower contrast, more camera noise
    classes: tuple[str, ...] = ANOMALY_CLASSES  # anomaly classes used, a subset of ANOMALY_CLASSES

    def validate(self) -> None:
        """Raise :class:`SynthError` naming the first field that cannot work."""
        if self.videos < 6:
            raise SynthError(f"synth: `videos` must be >= 6 (each split needs normal and abnormal), got {self.videos}")
        if self.width < 64 or self.height < 48 or self.width % 2 or self.height % 2:
            raise SynthError(f"synth: frame size must be even and >= 64x48, got {self.width}x{self.height}")
        if not 16 <= self.min_frames <= self.max_frames:
            raise SynthError(f"synth: need 16 <= min_frames <= max_frames, got {self.min_frames}..{self.max_frames}")
        if not 0.0 < self.abnormal_fraction < 1.0:
            raise SynthError(f"synth: abnormal_fraction must be in (0, 1), got {self.abnormal_fraction}")
        if self.val_fraction <= 0 or self.test_fraction <= 0 or self.val_fraction + self.test_fraction >= 1:
            raise SynthError(f"synth: need val, test fractions > 0 summing below 1, got "
                             f"{self.val_fraction}, {self.test_fraction}")
        if not 0.0 < self.min_window <= self.max_window < 1.0:
            raise SynthError(f"synth: need 0 < min_window <= max_window < 1, got {self.min_window}..{self.max_window}")
        if not 1 <= self.min_agents <= self.max_agents:
            raise SynthError(f"synth: need 1 <= min_agents <= max_agents, got {self.min_agents}..{self.max_agents}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise SynthError(f"synth: difficulty must be in [0, 1], got {self.difficulty}")
        unknown = [c for c in self.classes if c not in ANOMALY_CLASSES]
        if not self.classes or unknown or len(set(self.classes)) != len(self.classes):
            raise SynthError(f"synth: classes must be distinct names from {ANOMALY_CLASSES}, got {self.classes}")


@dataclass(frozen=True)
class SynthVideo:
    """One video of the benchmark: its label, split and anomaly window."""

    name: str  # e.g. "Running_0007" (class first, UCF style)
    file: str  # path relative to the benchmark root, e.g. "videos/Running_0007.avi"
    label: int  # 1 abnormal, 0 normal
    cls: str  # anomaly class, or "Normal"
    split: str  # train | val | test
    num_frames: int  # frames in the video file
    fps: float  # frames per second
    start: int = -1  # first abnormal frame (0-based), -1 for normal videos
    end: int = -1  # one past the last abnormal frame, -1 for normal videos

    def frame_labels(self) -> np.ndarray:
        """Frame-level ground truth, ``(num_frames,)`` uint8, 1 inside ``[start, end)``."""
        gt = np.zeros(self.num_frames, dtype=np.uint8)
        if self.label:
            gt[self.start:self.end] = 1
        return gt


@dataclass
class SynthBenchmark:
    """What :func:`make_benchmark` wrote: paths and a summary."""

    root: Path  # OUT
    config: SynthConfig  # the config it was made from
    videos: list[SynthVideo]  # every video, in name order
    annotation_path: Path  # OUT/Temporal_Anomaly_Annotation.txt
    labels_path: Path  # OUT/labels.csv
    list_paths: dict[str, Path]  # split -> OUT/<split>.list
    gt_paths: dict[str, Path]  # split -> OUT/gt-<split>.npy (val and test)
    seconds: float = 0.0  # wall time to render and write
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class -> number of videos

    def split(self, name: str) -> list[SynthVideo]:
        """Videos of one split in list order (abnormal first, then by name)."""
        return list_order([v for v in self.videos if v.split == name])


# ----------------------------------------------------------------------------------------------------------- plan


def plan_benchmark(config: SynthConfig) -> list[SynthVideo]:
    """Decide every video's class, split, length and anomaly window (no pixels); deterministic for the seed."""
    config.validate()
    rng = np.random.default_rng([config.seed, 0])
    n_abn = min(max(3, round(config.videos * config.abnormal_fraction)), config.videos - 3)
    n_norm = config.videos - n_abn
    # Abnormal classes in round-robin order, so any prefix holds the classes evenly; the test split takes the
    # first share, so every class reaches test once it has >= len(classes) abnormal videos.
    abn_classes = [config.classes[i % len(config.classes)] for i in range(n_abn)]
    groups = [(NORMAL_CLASS, _split_sizes(n_norm, config)), ("abnormal", _split_sizes(n_abn, config))]
    order: list[tuple[str, str]] = []  # (class, split)
    for group, (n_test, n_val, n_train) in groups:
        classes = [NORMAL_CLASS] * n_norm if group == NORMAL_CLASS else abn_classes
        splits = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
        order.extend(zip(classes, splits))
    ids = rng.permutation(config.videos)  # video numbers do not reveal split or class order
    videos = []
    for (cls, split), idx in zip(order, ids):
        num_frames = int(rng.integers(config.min_frames, config.max_frames + 1))
        start = end = -1
        if cls != NORMAL_CLASS:
            lo = max(1, math.ceil(config.min_window * num_frames))
            hi = max(lo, math.floor(config.max_window * num_frames))
            length = int(rng.integers(lo, hi + 1))
            start = int(rng.integers(0, num_frames - length + 1))
            end = start + length
        name = f"{cls}_{int(idx):04d}"
        videos.append(SynthVideo(name=name, file=f"videos/{name}{VIDEO_EXT}", label=int(cls != NORMAL_CLASS),
                                 cls=cls, split=split, num_frames=num_frames, fps=float(config.fps),
                                 start=start, end=end))
    return sorted(videos, key=lambda v: v.name)


def _split_sizes(n: int, config: SynthConfig) -> tuple[int, int, int]:
    """(test, val, train) sizes of a group of n >= 3 videos, each at least 1."""
    n_test = max(1, round(n * config.test_fraction))
    n_val = max(1, round(n * config.val_fraction))
    while n_test + n_val > n - 1:  # keep one for training
        if n_test >= n_val and n_test > 1:
            n_test -= 1
        else:
            n_val -= 1
    return n_test, n_val, n - n_test - n_val


def list_order(videos: list[SynthVideo]) -> list[SynthVideo]:
    """RTFM list convention: abnormal videos first, then normal, each by name."""
    return sorted(videos, key=lambda v: (-v.label, v.name))


def read_labels(root: str | os.PathLike) -> list[SynthVideo]:
    """Read ``labels.csv`` and the annotation windows of a benchmark written by :func:`make_benchmark`."""
    root = Path(root)
    labels_path, ann_path = root / LABELS_FILE, root / ANNOTATION_FILE
    for p in (labels_path, ann_path):
        if not p.is_file():
            raise SynthError(f"{p}: missing; is {root} a synthetic benchmark made by `vad synth`?")
    windows: dict[str, tuple[int, int]] = {}
    for lineno, line in enumerate(read_text(ann_path, "annotation file", SynthError).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            windows[Path(parts[0]).stem] = (int(parts[2]), int(parts[3]))
        except (IndexError, ValueError):
            raise SynthError(f"{ann_path}:{lineno}: expected '<file>  <Class>  <start>  <end> ...', got "
                             f"{one_line(line, 120)!r}") from None
    videos = []
    _, rows = read_csv_table(labels_path, LABEL_COLUMNS, "labels file", SynthError)
    for lineno, row in rows:
        name = row["name"]
        if name not in windows:
            raise SynthError(f"{ann_path}: no annotation line for video {one_line(name, 80)}")
        start, end = windows[name]
        try:
            videos.append(SynthVideo(name=name, file=row["file"], label=int(row["label"]), cls=row["class"],
                                     split=row["split"], num_frames=int(row["num_frames"]),
                                     fps=float(row["fps"]), start=start, end=end))
        except ValueError as exc:
            raise SynthError(f"{labels_path}:{lineno}: bad row for video {one_line(name, 80)}: {exc}") from None
    return videos
