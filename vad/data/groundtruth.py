"""Frame-level ground truth from the files the community uses: concatenated ``gt-*.npy`` + a list, UCF-Crime's
``Temporal_Anomaly_Annotation.txt``, XD-Violence's ``annotations.txt``, ShanghaiTech's per-video frame masks
(``test_frame_mask/NAME.npy``), or a synthetic benchmark made by ``vad synth``.

Every reader returns a :class:`GroundTruth`: ``frames[name]`` is ``(T_name,)`` uint8 (1 = abnormal frame) and
``classes[name]`` the video's class (``"Normal"`` for normal videos). Windows are 0-based, start inclusive, end
exclusive (``gt[start:end] = 1``), as in the public scripts that build ``gt-*.npy`` from the UCF annotation.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vad.data.formats import infer_label_class, video_name
from vad.errors import GroundTruthError, SynthError
from vad.io import one_line, read_text
from vad.names import NORMAL_CLASS
from vad.synth.benchmark import SPLITS, list_order, read_labels


@dataclass
class GroundTruth:
    """Frame-level labels and classes of a set of videos, keyed by video name, in source order."""

    frames: dict[str, np.ndarray]  # name -> (T,) uint8, 1 = abnormal frame
    classes: dict[str, str]  # name -> class name ("Normal" for normal videos)

    @property
    def names(self) -> list[str]:
        """Video names in source order."""
        return list(self.frames)

    def labels(self) -> dict[str, int]:
        """Video-level labels: 1 if any frame is abnormal."""
        return {n: int(g.any()) for n, g in self.frames.items()}

    def concatenated(self, names: Sequence[str] | None = None) -> np.ndarray:
        """All frames in ``names`` order (default: source order), ``(sum T,)`` uint8."""
        names = self.names if names is None else names
        return np.concatenate([self.frames[n] for n in names]) if names else np.zeros(0, np.uint8)


def _frame_counts(names: list[str], num_frames: Mapping[str, int] | Sequence[int], where: str) -> list[int]:
    """Per-video frame counts in ``names`` order, from a name → count mapping or a sequence in list order."""
    if isinstance(num_frames, Mapping):
        missing = [n for n in names if n not in num_frames]
        if missing:
            raise GroundTruthError(f"{where}: no frame count for video {missing[0]}"
                                   + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        counts = [int(num_frames[n]) for n in names]
    else:
        counts = [int(c) for c in num_frames]
        if len(counts) != len(names):
            raise GroundTruthError(f"{where}: {len(names)} videos but {len(counts)} frame counts")
    bad = [n for n, c in zip(names, counts) if c <= 0]
    if bad:
        raise GroundTruthError(f"{where}: video {bad[0]} has a non-positive frame count")
    return counts


def _class_of(name: str, gt: np.ndarray) -> str:
    """A video's class from its name (UCF / XD / synth convention), ``Normal`` when its GT is all zero."""
    label, cls = infer_label_class(name)
    if not gt.any() or label == 0:
        return NORMAL_CLASS
    return cls or "Abnormal"


def read_gt_npy(gt_file: str | os.PathLike, list_file: str | os.PathLike,
                num_frames: Mapping[str, int] | Sequence[int]) -> GroundTruth:
    """Split a concatenated frame-level ``gt-*.npy`` into videos using the list it was built from.

    Args:
        gt_file: ``(sum T,)`` 0/1 array, the list's videos concatenated in list order.
        list_file: one video (or feature file) path per line; names via :func:`vad.formats.video_name`.
        num_frames: each video's frame count (name → T, or a sequence in list order), e.g. 16 × snippets.
    """
    gt_file, list_file = Path(gt_file), Path(list_file)
    for p in (gt_file, list_file):
        if not p.is_file():
            raise GroundTruthError(f"{p}: not found")
    try:
        gt = np.load(gt_file, allow_pickle=False)
    except Exception as exc:
        raise GroundTruthError(f"{gt_file}: not a readable .npy ({type(exc).__name__}: {exc})") from exc
    gt = np.asarray(gt).reshape(-1) if gt.ndim == 2 and 1 in gt.shape else gt
    if gt.ndim != 1:
        raise GroundTruthError(f"{gt_file}: ground truth must be 1-D (frames), got shape {gt.shape}")
    if gt.size and not np.isin(gt, (0, 1)).all():
        raise GroundTruthError(f"{gt_file}: ground truth must hold only 0 and 1")
    names = list_names(list_file)
    if not names:
        raise GroundTruthError(f"{list_file}: list file is empty")
    counts = _frame_counts(names, num_frames, str(list_file))
    if sum(counts) != gt.size:
        raise GroundTruthError(f"{gt_file}: holds {gt.size} frames but the {len(names)} videos of {list_file.name} "
                               f"have {sum(counts)}")
    bounds = np.cumsum([0] + counts)
    frames = {n: gt[a:b].astype(np.uint8) for n, a, b in zip(names, bounds[:-1], bounds[1:])}
    return GroundTruth(frames, {n: _class_of(n, g) for n, g in frames.items()})


def list_names(list_file: str | os.PathLike) -> list[str]:
    """Video names of a list file in order, once each (per-crop lists name a video several times; a line may be
    a bare name, a video path or a feature path: :func:`vad.data.formats.video_name` keys them all alike)."""
    names: dict[str, None] = {}
    for line in read_text(list_file, "list file", GroundTruthError).splitlines():
        if line.strip():
            names.setdefault(video_name(line), None)
    return list(names)


def _windows(path: Path, lineno: int, name: str, fields: Sequence[str], line: str) -> list[tuple[int, int]]:
    """``(start, end)`` frame pairs from a row's numbers (``-1 -1`` pairs dropped); bad numbers name the line."""
    try:
        nums = [int(x) for x in fields]
    except ValueError:
        raise GroundTruthError(f"{path}:{lineno}: frame numbers must be integers, got {one_line(line, 120)!r}"
                               ) from None
    windows = []
    for s, e in zip(nums[::2], nums[1::2]):
        if s == -1 and e == -1:
            continue
        if s < 0 or e < s:
            raise GroundTruthError(f"{path}:{lineno}: bad window {s} {e} for video {name}")
        windows.append((s, e))
    return windows


def parse_ucf_annotations(path: str | os.PathLike) -> dict[str, tuple[str, list[tuple[int, int]]]]:
    """Parse a UCF-style annotation file into ``name -> (class, [(start, end), ...])`` (``-1`` pairs dropped)."""
    path = Path(path)
    if not path.is_file():
        raise GroundTruthError(f"{path}: annotation file not found")
    out: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    for lineno, line in enumerate(read_text(path, "annotation file", GroundTruthError).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 4 or len(parts) % 2:
            raise GroundTruthError(f"{path}:{lineno}: expected '<file>  <Class>  <start1>  <end1> ...', got "
                                   f"{one_line(line, 120)!r}")
        cls = parts[1]
        out[video_name(parts[0])] = (NORMAL_CLASS if cls.lower().startswith("normal") else cls,
                                     _windows(path, lineno, parts[0], parts[2:], line))
    return out


def parse_xd_annotations(path: str | os.PathLike) -> dict[str, list[tuple[int, int]]]:
    """Parse XD-Violence's ``annotations.txt`` into ``name -> [(start, end), ...]``.

    Each line is ``<name> <start1> <end1> [<start2> <end2> ...]`` in frames of the video, abnormal test videos
    only (a normal video has no line); a few published lines carry a ``.mp4`` suffix on the name, which is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise GroundTruthError(f"{path}: annotation file not found")
    out: dict[str, list[tuple[int, int]]] = {}
    for lineno, line in enumerate(read_text(path, "annotation file", GroundTruthError).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or len(parts) % 2 == 0:
            raise GroundTruthError(f"{path}:{lineno}: expected '<name> <start1> <end1> [<start2> <end2> ...]', "
                                   f"got {one_line(line, 120)!r}")
        out[video_name(parts[0])] = _windows(path, lineno, parts[0], parts[1:], line)
    return out


def _window_frames(count: int, windows: Sequence[tuple[int, int]], where: str, name: str) -> np.ndarray:
    """``(count,)`` uint8 with the windows set to 1 (clipped to the video); windows wholly past its end are an
    error, since they mean the annotation and the features describe different videos."""
    gt = np.zeros(count, dtype=np.uint8)
    for s, e in windows:
        gt[s:e] = 1
    if windows and not gt.any():
        raise GroundTruthError(f"{where}: every window of video {name} starts after its {count} frames")
    return gt


def read_ucf_annotations(path: str | os.PathLike, num_frames: Mapping[str, int],
                         names: Iterable[str] | None = None) -> GroundTruth:
    """Frame-level GT from UCF-Crime's ``Temporal_Anomaly_Annotation.txt`` for the videos given.

    Args:
        path: the annotation file (``<file>  <Class>  <s1>  <e1>  <s2>  <e2>``, ``-1`` for none).
        num_frames: name → frame count (e.g. 16 × snippets); windows past the end are clipped to it.
        names: the videos wanted, in order (default: the keys of ``num_frames``); each must be annotated.
    """
    ann = parse_ucf_annotations(path)
    names = list(num_frames) if names is None else list(names)
    counts = _frame_counts(names, num_frames, str(path))
    frames, classes = {}, {}
    for name, count in zip(names, counts):
        if name not in ann:
            raise GroundTruthError(f"{path}: no annotation line for video {name}")
        cls, windows = ann[name]
        frames[name] = _window_frames(count, windows, str(path), name)
        classes[name] = cls if frames[name].any() else NORMAL_CLASS
    return GroundTruth(frames, classes)


def read_xd_annotations(path: str | os.PathLike, num_frames: Mapping[str, int],
                        names: Iterable[str] | None = None) -> GroundTruth:
    """Frame-level GT from XD-Violence's ``annotations.txt`` for the videos given.

    A video without a line is normal, as the file lists abnormal videos only; but a video whose name says it is
    violent (``_label_B...``) must have one, else the annotation file and the videos do not belong together.
    Classes come from the name's label code (``_label_B2-G-0`` → Shooting, the first code).
    """
    ann = parse_xd_annotations(path)
    names = list(num_frames) if names is None else list(names)
    counts = _frame_counts(names, num_frames, str(path))
    frames, classes = {}, {}
    for name, count in zip(names, counts):
        label, cls = infer_label_class(name)
        if name not in ann and label == 1:
            raise GroundTruthError(f"{path}: no annotation line for violent video {name}")
        frames[name] = _window_frames(count, ann.get(name, []), str(path), name)
        classes[name] = (cls or "Abnormal") if frames[name].any() else NORMAL_CLASS
    return GroundTruth(frames, classes)


def read_frame_masks(folder: str | os.PathLike, num_frames: Mapping[str, int],
                     names: Iterable[str] | None = None) -> GroundTruth:
    """Frame-level GT from one ``NAME.npy`` 0/1 mask per video (ShanghaiTech's ``test_frame_mask``).

    A video without a mask file is normal (the weakly supervised split takes its normal test videos from the
    original training set, which has no masks). A mask longer or shorter than the video's frame count is cut or
    zero-padded to it (features cover whole snippets). Abnormal videos get the class ``Abnormal``: the masks say
    where, not what.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GroundTruthError(f"{folder}: frame mask folder not found")
    names = list(num_frames) if names is None else list(names)
    counts = _frame_counts(names, num_frames, str(folder))
    frames, classes = {}, {}
    for name, count in zip(names, counts):
        mask = load_mask(folder / f"{name}.npy")
        gt = np.zeros(count, dtype=np.uint8)
        if mask is not None:
            gt[: min(count, mask.size)] = mask[:count]
        frames[name], classes[name] = gt, "Abnormal" if gt.any() else NORMAL_CLASS
    return GroundTruth(frames, classes)


def load_mask(path: Path) -> np.ndarray | None:
    """A 1-D 0/1 frame mask, or None when the file does not exist; anything else names the file."""
    if not path.exists():
        return None
    try:
        mask = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise GroundTruthError(f"{path}: not a readable .npy ({type(exc).__name__}: {exc})") from exc
    mask = np.asarray(mask).reshape(-1) if mask.ndim == 2 and 1 in mask.shape else mask
    if mask.ndim != 1 or (mask.size and not np.isin(mask, (0, 1)).all()):
        raise GroundTruthError(f"{path}: a frame mask must be 1-D and hold only 0 and 1, got shape {mask.shape}")
    return mask.astype(np.uint8)


def read_synth_gt(root: str | os.PathLike, split: str | None = "test") -> GroundTruth:
    """Frame-level GT of a ``vad synth`` benchmark's split (``None`` for every video), in list order."""
    if split is not None and split not in SPLITS:
        raise GroundTruthError(f"{root}: split must be one of {', '.join(SPLITS)}, got {split!r}")
    try:
        videos = read_labels(root)
    except SynthError as exc:
        raise GroundTruthError(str(exc)) from exc
    videos = list_order([v for v in videos if split is None or v.split == split])
    if not videos:
        raise GroundTruthError(f"{root}: no videos in split {split!r}")
    return GroundTruth({v.name: v.frame_labels() for v in videos}, {v.name: v.cls for v in videos})
