"""Datasets for training and evaluation: features + video labels + splits.

Features come from a ``vad extract`` directory or a peer project's files (RTFM, UR-DMU/PEL4VAD, VadCLIP);
labels and splits from a labels CSV (``name,label[,class][,split]``; a ``vad synth`` benchmark's ``labels.csv``
is one) or, for peer formats, from their own conventions.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vad.errors import FeatureError, VadError
from vad.features.store import TextFeatures, VideoFeatures, load_feature_dir
from vad.io import one_line, read_csv_table
from vad.names import FEATURE_LEVELS, MANIFEST_FILE, NORMAL_CLASS


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
    failed: dict[str, str] = field(default_factory=dict)  # feature file -> why that video was left out

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
        return tuple(lvl for lvl in FEATURE_LEVELS if all(lvl in p for p in present))


SPLIT_NAMES = ("train", "val", "test")


def read_labels_csv(path: str | os.PathLike, default_split: str = "train") -> dict[str, tuple[int, str, str]]:
    """``name → (label, class, split)`` from a CSV with columns ``name,label`` and optional ``class,split``.

    UTF-8 (a BOM is fine), comma, semicolon, tab or ``|`` separated. Every bad row (a short one, a label other
    than 0 or 1, a name listed twice, an unknown split) is an error naming the line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "labels.csv"
    if not path.is_file():
        raise VadError(f"{path}: labels file not found")
    _, rows = read_csv_table(path, ("name", "label"), "labels file")
    out: dict[str, tuple[int, str, str]] = {}
    first_line: dict[str, int] = {}
    for lineno, row in rows:
        name, label_text = row["name"], row["label"]
        where = f"{path}:{lineno}"
        if not name or any(ord(ch) < 32 for ch in name):
            raise VadError(f"{where}: {'empty video name' if not name else 'control character in the video name'}")
        if name in first_line:
            raise VadError(f"{where}: video {one_line(name, 80)!r} is listed twice (first on line {first_line[name]})")
        if label_text not in ("0", "1"):
            raise VadError(f"{where}: label must be 0 or 1, got {one_line(label_text, 40)!r}")
        label = int(label_text)
        split = row.get("split", "")
        if split and split not in SPLIT_NAMES:
            raise VadError(f"{where}: split must be one of {', '.join(SPLIT_NAMES)}, got {one_line(split, 40)!r}")
        first_line[name] = lineno
        out[name] = (label, row.get("class") or (NORMAL_CLASS if label == 0 else "Anomaly"), split or default_split)
    if not out:
        raise VadError(f"{path}: no labelled videos (only a header)")
    return out


def load_dataset(features: str | os.PathLike, labels: str | os.PathLike | None = None, fmt: str = "auto",
                 val_fraction: float = 0.15, seed: int = 0, default_split: str = "train") -> Dataset:
    """Assemble a :class:`Dataset` (see the module docstring). A missing val split is carved from train.

    ``default_split`` is the split of videos whose labels say none (peer formats: the list given is one split).
    A video whose features cannot be read, hold NaN/Inf, or differ in width from the others is left out and
    named in ``Dataset.failed``; the rest are used.
    """
    features = Path(features)
    ds = Dataset({}, None, [], {})
    if fmt == "auto":
        from vad.data.formats import detect_format

        fmt = detect_format(features)
    if fmt == "vadgraph":
        _vadgraph_records(ds, features, labels, default_split)
    else:
        _peer_records(ds, features, labels, fmt, default_split)
    dims = Counter(r.features.dim for r in ds.records.values())
    for name, record in list(ds.records.items()):
        if dims and record.features.dim != dims.most_common(1)[0][0]:
            ds.failed[record.features.meta.path or name] = (f"{name}: features are {record.features.dim} wide, "
                                                            f"most videos' are {dims.most_common(1)[0][0]}")
            del ds.records[name]
    if not ds.records:
        raise VadError(f"{features}: no labelled videos" + (f" ({len(ds.failed)} unreadable, first: "
                                                             f"{next(iter(ds.failed.values()))})" if ds.failed else ""))
    if not ds.split("val") and ds.split("train") and val_fraction > 0:
        _carve_val(ds, val_fraction, seed)
    return ds


def _vadgraph_records(ds: Dataset, features: Path, labels: str | os.PathLike | None, default_split: str) -> None:
    """Fill ``ds`` from a ``vad extract`` directory and a labels CSV."""
    feats, ds.text = load_feature_dir(features, ds.failed)
    if labels is None:
        raise VadError(f"{features}: vadgraph features need labels: give a labels CSV (`labels`; columns "
                       f"name,label[,class][,split]) or a `vad synth` benchmark directory (`benchmark`)")
    table = read_labels_csv(labels, default_split)
    missing = [n for n in table if n not in feats]
    if missing:
        ds.notes.append(f"{len(missing)} labelled video(s) have no features and are left out (first: {missing[0]})")
    ds.records.update({n: VideoRecord(feats[n], *table[n]) for n in table if n in feats})
    unlabelled = [n for n in feats if n not in table]
    if unlabelled:
        ds.notes.append(f"{len(unlabelled)} video(s) with features have no label and are left out")


def _peer_records(ds: Dataset, features: Path, labels: str | os.PathLike | None, fmt: str, default_split: str
                  ) -> None:
    """Fill ``ds`` from another project's feature files, labels from a CSV or from the names."""
    from vad.data.formats import read_peer_features

    items = read_peer_features(features, fmt, failed=ds.failed)
    table = read_labels_csv(labels, default_split) if labels is not None else {}
    for item in items:
        label, cls, split = table.get(item.name, (item.label, item.cls or "", default_split))
        if label < 0:
            raise VadError(f"{features}: cannot tell the label of video {item.name}; give a labels CSV (`labels`)")
        ds.records[item.name] = VideoRecord(item.features, label, cls or (NORMAL_CLASS if label == 0 else "Anomaly"),
                                            split)


def normal_dataset(features: str | os.PathLike, fmt: str = "auto", val_fraction: float = 0.15,
                   seed: int = 0) -> Dataset:
    """Every video of a feature directory (or peer feature list) as a *normal* video: no labels needed.

    ``val_fraction`` of them (at least one when there are two or more) are moved to the val split, where the
    one-class model's score scale and stored thresholds are fitted (``vad fit-normal``).
    """
    features = Path(features)
    if features.is_dir() and (features / MANIFEST_FILE).exists() or fmt == "vadgraph":
        feats, text = load_feature_dir(features)
        items = list(feats.values())
    else:
        from vad.data.formats import read_peer_features

        items, text = [item.features for item in read_peer_features(features, fmt)], None
    records = {f.meta.name: VideoRecord(f, 0, NORMAL_CLASS, "train") for f in items}
    if not records:
        raise VadError(f"{features}: no videos")
    dims = {r.features.dim for r in records.values()}
    if len(dims) > 1:
        raise FeatureError(f"{features}: videos have different feature widths {sorted(dims)}")
    ds = Dataset(records, text, [f"{len(records)} videos, all taken as normal"])
    if val_fraction > 0:
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
