"""Datasets for training and evaluation: features + video labels + splits, and batches of padded tensors.

Features come from a ``vad extract`` directory or a peer project's files (RTFM, UR-DMU/PEL4VAD, VadCLIP);
labels and splits from a labels CSV (``name,label[,class][,split]``; a ``vad synth`` benchmark's ``labels.csv``
is one) or, for peer formats, from their own conventions.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vad.errors import FeatureError, VadError
from vad.extract import MANIFEST, load_feature_dir
from vad.video_features import TextFeatures, VideoFeatures

NORMAL = "Normal"
LEVELS = ("clip", "frame", "patch")


@dataclass
class VideoRecord:
    """One video of a dataset."""

    features: VideoFeatures  # its multi-level features
    label: int  # 1 abnormal, 0 normal (video level)
    cls: str  # class name ("Normal" for normal videos)
    split: str  # train | val | test

    @property
    def name(self) -> str:
        """The video's name."""
        return self.features.meta.name


@dataclass
class Dataset:
    """Videos with labels and splits, plus the prompt embeddings the features were made with."""

    records: dict[str, VideoRecord]
    text: TextFeatures | None
    notes: list[str]  # what was inferred (e.g. "val split carved from train"), shown to the user

    def split(self, name: str) -> list[VideoRecord]:
        """Records of one split, in dataset order."""
        return [r for r in self.records.values() if r.split == name]

    @property
    def dim(self) -> int:
        """D, the feature width."""
        return next(iter(self.records.values())).features.dim

    def levels(self) -> tuple[str, ...]:
        """Visual levels present in every video."""
        present = [set(r.features.levels()) for r in self.records.values()]
        return tuple(lvl for lvl in LEVELS if all(lvl in p for p in present))


def read_labels_csv(path: str | os.PathLike, default_split: str = "train") -> dict[str, tuple[int, str, str]]:
    """``name → (label, class, split)`` from a CSV with columns ``name,label`` and optional ``class,split``."""
    path = Path(path)
    if path.is_dir():
        path = path / "labels.csv"
    if not path.is_file():
        raise VadError(f"{path}: labels file not found")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "name" not in cols or "label" not in cols:
            raise VadError(f"{path}: needs columns 'name' and 'label' (has {', '.join(cols) or 'none'})")
        out = {}
        for lineno, row in enumerate(reader, 2):
            try:
                label = int(row["label"])
            except ValueError:
                raise VadError(f"{path}:{lineno}: label must be 0 or 1, got {row['label']!r}") from None
            cls = row.get("class") or (NORMAL if label == 0 else "Anomaly")
            out[row["name"]] = (label, cls, (row.get("split") or default_split).strip())
    return out


def load_dataset(features: str | os.PathLike, labels: str | os.PathLike | None = None, fmt: str = "auto",
                 val_fraction: float = 0.15, seed: int = 0, default_split: str = "train") -> Dataset:
    """Assemble a :class:`Dataset` (see the module docstring). A missing val split is carved from train.

    ``default_split`` is the split of videos whose labels say none (peer formats: the list given is one split).
    """
    features = Path(features)
    notes: list[str] = []
    if features.is_dir() and (features / MANIFEST).exists() or fmt == "vadgraph":
        feats, text = load_feature_dir(features)
        if labels is None:
            raise VadError(f"{features}: vadgraph features need labels: pass --labels labels.csv "
                           f"(columns name,label[,class][,split]) or a `vad synth` benchmark directory")
        table = read_labels_csv(labels, default_split)
        missing = [n for n in table if n not in feats]
        if missing:
            notes.append(f"{len(missing)} labelled video(s) have no features and are left out "
                         f"(first: {missing[0]})")
        records = {n: VideoRecord(feats[n], *table[n]) for n in table if n in feats}
        unlabelled = [n for n in feats if n not in table]
        if unlabelled:
            notes.append(f"{len(unlabelled)} video(s) with features have no label and are left out")
    else:
        from vad.formats import read_peer_features

        items = read_peer_features(features, fmt)
        table = read_labels_csv(labels, default_split) if labels is not None else {}
        records, text = {}, None
        for item in items:
            label, cls, split = table.get(item.name, (item.label, item.cls or "", default_split))
            if label < 0:
                raise VadError(f"{features}: cannot tell the label of video {item.name}; pass --labels")
            records[item.name] = VideoRecord(item.features, label, cls or (NORMAL if label == 0 else "Anomaly"),
                                             split)
    if not records:
        raise VadError(f"{features}: no labelled videos")
    dims = {r.features.dim for r in records.values()}
    if len(dims) > 1:
        raise FeatureError(f"{features}: videos have different feature widths {sorted(dims)}")
    ds = Dataset(records, text, notes)
    if not ds.split("val") and ds.split("train") and val_fraction > 0:
        _carve_val(ds, val_fraction, seed)
    return ds


def _carve_val(ds: Dataset, fraction: float, seed: int) -> None:
    """Move a stratified ``fraction`` of train videos to val (model selection never looks at test)."""
    rng = np.random.default_rng(seed)
    moved = 0
    for label in (0, 1):
        names = [r.name for r in ds.split("train") if r.label == label]
        take = int(round(len(names) * fraction))
        if len(names) >= 2 and take == 0:
            take = 1
        for name in rng.permutation(names)[:take]:
            ds.records[str(name)].split = "val"
            moved += 1
    ds.notes.append(f"no val split given: {moved} train videos (stratified, seed {seed}) moved to val")


@dataclass
class FeatureBatch:
    """Padded tensors of B videos.

    Shapes: clip ``(B, N, D)``; frame ``(B, N, F, D)`` or None; patch ``(B, N, P, D)`` or None;
    text ``(K, D)`` or None; node_mask ``(B, N)`` bool (True = real snippet).
    """

    clip: Tensor
    node_mask: Tensor
    frame: Tensor | None = None
    patch: Tensor | None = None
    text: Tensor | None = None

    def to(self, device: torch.device | str) -> FeatureBatch:
        """The batch on ``device`` (non-blocking: pin the batch first on CUDA)."""
        move = lambda t: None if t is None else t.to(device, non_blocking=True)
        return FeatureBatch(move(self.clip), move(self.node_mask), move(self.frame), move(self.patch),
                            move(self.text))

    def centered(self) -> FeatureBatch:
        """Each video's visual features minus that video's per-dimension median over its real snippets.

        CLIP features of one scene are nearly parallel (cosine ~0.9); what changes over a video is a small
        residual. The median (not the mean) is the video's usual state whenever anomalies cover under half of
        it, so normal snippets sit near 0 and abnormal ones away from it. (With the mean, an abnormal video's
        normal snippets are pushed opposite to its anomaly, and MIL can learn that inverted cue.)
        """
        m = self.node_mask

        def center(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            wt = m.view(*m.shape, *([1] * (t.dim() - 2)))
            median = t.masked_fill(~wt, float("nan")).nanmedian(dim=1, keepdim=True).values
            return (t - median.nan_to_num(0.0)) * wt

        return FeatureBatch(center(self.clip), self.node_mask, center(self.frame), center(self.patch), self.text)

    @property
    def lengths(self) -> Tensor:
        """Real snippets per video, ``(B,)``."""
        return self.node_mask.sum(1)


def resample(x: np.ndarray, length: int) -> np.ndarray:
    """Average-pool (or repeat) the first axis of ``x`` to ``length`` rows (the MIL training protocol)."""
    n = x.shape[0]
    if n == length:
        return x
    edges = np.linspace(0, n, length + 1)
    starts = np.floor(edges[:-1]).astype(int)
    stops = np.maximum(starts + 1, np.ceil(edges[1:]).astype(int))
    return np.stack([x[s:e].mean(0) for s, e in zip(starts, stops)])


def collate(videos: Sequence[VideoFeatures], levels: Sequence[str], text: np.ndarray | None,
            length: int | None = None, pad_short: bool = False) -> FeatureBatch:
    """Stack videos into a :class:`FeatureBatch`.

    ``length=None`` pads to the longest video. ``length=T`` resamples every video to T snippets (the MIL
    protocol); with ``pad_short`` only longer videos are average-pooled down to T and shorter ones are padded,
    so a short video's snippets are never duplicated (duplicates would fake temporal neighbours in training).
    """
    def target(v: VideoFeatures) -> int:
        if length is None:
            return v.num_snippets
        return min(length, v.num_snippets) if pad_short else length

    def level(v: VideoFeatures, name: str) -> np.ndarray:
        arr = getattr(v, name)
        if arr is None:
            raise FeatureError(f"{v.meta.name}: has no {name}-level features (levels: {', '.join(v.levels())})")
        return resample(arr, target(v))

    n = max(target(v) for v in videos)
    mask = torch.zeros(len(videos), n, dtype=torch.bool)
    tensors: dict[str, Tensor] = {}
    for name in ["clip", *[lvl for lvl in levels if lvl != "clip"]]:
        rows = [torch.from_numpy(level(v, name)) for v in videos]
        padded = [F.pad(r, (0, 0) * (r.dim() - 1) + (0, n - r.shape[0])) for r in rows]
        tensors[name] = torch.stack(padded)
    for i, v in enumerate(videos):
        mask[i, : target(v)] = True
    return FeatureBatch(tensors["clip"], mask, tensors.get("frame"), tensors.get("patch"),
                        None if text is None else torch.as_tensor(text, dtype=torch.float32))
