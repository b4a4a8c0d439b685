"""Read the feature files other VAD projects publish into :class:`vad.VideoFeatures` (clip level only).

Formats (docs/design.md §8):

- ``rtfm``: one ``.npy`` per video, ``(T, C, D)`` with C = 10 crops (UCF, D = 2048 I3D) or 5 (XD); a list file of
  paths, abnormal videos first.
- ``urdmu`` (UR-DMU, PEL4VAD): one ``.npy`` per crop, ``<Name>__<k>.npy`` of shape ``(T, D)``, k = 0..9 (XD 0..4).
- ``vadclip``: a CSV with ``path,label`` columns, one row per crop file ``<Name>__<k>.npy`` of shape ``(T, 512)``;
  ``label`` is the class name (``Normal``, ``Abuse``, ... or XD codes ``A``, ``B1``, ...). Test CSVs list one crop.

Every reader returns a list of :class:`LabelledFeatures` in file order. Each T-snippet video becomes a
``VideoFeatures`` with ``clip`` ``(T, D)`` and ``VideoMeta(snippet_len=16, num_frames=16*T, source_format=...)``.
Labels follow each dataset's naming convention (:func:`infer_label_class`); -1 means "unknown" (e.g. ShanghaiTech
names): pass ``num_abnormal`` (RTFM lists put the abnormal videos first) or take labels from the ground truth.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vad.errors import FeatureError
from vad.features.store import VIDEO_DIR, VideoFeatures, VideoMeta
from vad.io import read_csv_table, read_text
from vad.names import MANIFEST_FILE, NORMAL_CLASS

PEER_SNIPPET_LEN = 16  # frames per snippet in all three projects' published features
Crop = Literal["mean"] | int  # "mean" over the crops, or one crop's index
FORMATS = ("vadgraph", "rtfm", "urdmu", "vadclip")

# XD-Violence label codes (in names "..._label_B2-0-0" and in VadCLIP's XD CSVs).
XD_CLASSES = {"A": NORMAL_CLASS, "B1": "Fighting", "B2": "Shooting", "B4": "Riot", "B5": "Abuse",
              "B6": "Car accident", "G": "Explosion"}

_CROP_RE = re.compile(r"^(?P<name>.+?)__(?P<crop>\d+)$")


@dataclass
class LabelledFeatures:
    """One video read from a peer format: its features, video-level label and class."""

    features: VideoFeatures  # clip level (T, D)
    label: int  # 1 abnormal, 0 normal, -1 unknown from the name
    cls: str  # class name ("Normal" for normal videos, "" when unknown)

    @property
    def name(self) -> str:
        """The video's name (``features.meta.name``)."""
        return self.features.meta.name


def video_name(path: str | os.PathLike) -> str:
    """A video's key from any of its file names: stem without a ``__<crop>`` or ``_i3d`` suffix.

    ``.../Abuse028_x264__3.npy`` → ``Abuse028_x264``; ``Abuse028_x264_i3d.npy`` → ``Abuse028_x264``;
    ``Abuse028_x264.mp4`` → ``Abuse028_x264``.
    """
    stem = Path(str(path).strip()).name
    if stem.endswith((".npy", ".npz")) or re.search(r"\.(mp4|avi|mkv|mov|webm)$", stem, re.IGNORECASE):
        stem = stem.rsplit(".", 1)[0]
    m = _CROP_RE.match(stem)
    if m:
        stem = m.group("name")
    for suffix in ("_i3d", "_clip"):
        stem = stem.removesuffix(suffix)
    return stem


def infer_label_class(name: str) -> tuple[int, str]:
    """(label, class) from a dataset naming convention; ``(-1, "")`` when the name does not say.

    UCF-Crime / synth: ``Normal_Videos_003_x264`` / ``Normal_0003`` → (0, Normal); ``Abuse028_x264`` /
    ``Running_0007`` → (1, Abuse / Running). XD-Violence: ``..._label_A`` → (0, Normal), ``..._label_B2-G-0`` → (1,
    Shooting) (the first code).
    """
    m = re.search(r"_label_([A-Z0-9]+(?:-[A-Z0-9]+)*)", name)
    if m:
        code = m.group(1).split("-")[0]
        return (0, NORMAL_CLASS) if code == "A" else (1, XD_CLASSES.get(code, code))
    if name.lower().startswith("normal"):
        return 0, NORMAL_CLASS
    m = re.match(r"^([A-Za-z]+)_?\d", name)
    if m:
        return 1, m.group(1)
    return -1, ""


def _label_from_text(text: str) -> tuple[int, str]:
    """(label, class) from a class column (``Normal``, ``Abuse``, XD ``A``, ``B1``...)."""
    text = text.strip()
    code = text.split("-")[0]
    if code in XD_CLASSES:
        return int(code != "A"), XD_CLASSES[code]
    if text.lower().startswith("normal") or text == "0":
        return 0, NORMAL_CLASS
    if text == "1":
        return 1, ""
    return 1, text


def _load_npy(path: Path, ndim: int, what: str) -> np.ndarray:
    """Load one ``.npy`` without unpickling and check its rank; errors name the file."""
    if not path.is_file():
        raise FeatureError(f"{path}: {what} feature file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # bad header, pickled object array, truncated file
        raise FeatureError(f"{path}: not a readable .npy ({type(exc).__name__}: {exc})") from exc
    if arr.ndim != ndim or 0 in arr.shape:
        hint = ""
        if ndim == 3 and arr.ndim == 2:
            hint = ("; a 2-D file holds one crop (T, D): per-crop files are named <Name>__<k>.npy and read as "
                    "`format` urdmu")
        raise FeatureError(f"{path}: {what} features must have {ndim} non-empty dims, got shape {arr.shape}{hint}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise FeatureError(f"{path}: {what} features must be real numbers, got dtype {arr.dtype}")
    return arr


def _make(name: str, clip: np.ndarray, fmt: str, path: Path | str = "") -> VideoFeatures:
    """Wrap a ``(T, D)`` array as clip-level ``VideoFeatures`` of a peer format (bad values name the file)."""
    meta = VideoMeta(name=name, path=str(path), num_frames=int(clip.shape[0]) * PEER_SNIPPET_LEN,
                     snippet_len=PEER_SNIPPET_LEN, backbone=fmt, source_format=fmt)
    with np.errstate(all="ignore"):
        clip = clip.astype(np.float32)
    try:
        return VideoFeatures(clip=clip, meta=meta)
    except FeatureError as exc:
        raise FeatureError(f"{path}: {exc}") from None


def _each(items, read, failed: dict[str, str] | None, where: str) -> list:
    """``[read(item)]`` for the items that can be read; with ``failed`` given, a ``FeatureError`` records the item
    (``where(item)`` → reason) and the rest go on, else it is raised."""
    out = []
    for item in items:
        try:
            out.append(read(item))
        except FeatureError as exc:
            if failed is None:
                raise
            failed[where(item)] = str(exc)
    if not out and failed:
        raise FeatureError(f"no video can be read ({len(failed)} failed, first: {next(iter(failed.values()))})")
    return out


def _read_list(list_file: Path) -> list[str]:
    """Non-empty, stripped lines of a list file."""
    if not list_file.is_file():
        raise FeatureError(f"{list_file}: list file not found")
    if list_file.suffix.lower() in (".npy", ".npz"):
        return [str(list_file)]  # one feature file given directly: a list of one
    lines = [ln.strip() for ln in read_text(list_file, "list file", FeatureError).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise FeatureError(f"{list_file}: list file is empty")
    return lines


def _resolve(entry: str, list_file: Path, root: str | os.PathLike | None) -> Path:
    """A list entry's file: relative to ``root`` (default: the list's folder); if absent there, by base name.

    Published lists hold the authors' absolute paths, so ``root/<basename>`` is tried when the path itself is not
    found.
    """
    p = Path(entry)
    base = Path(root) if root is not None else list_file.parent
    candidate = p if p.is_absolute() else base / p
    if not candidate.exists() and (base / p.name).exists():
        return base / p.name
    return candidate


def _labels(items: list[tuple[int, str, Path, VideoFeatures]], num_abnormal: int | None) -> list[LabelledFeatures]:
    """Attach labels: the first ``num_abnormal`` list entries are abnormal when given, else the name's convention."""
    out = []
    for i, name, _path, feats in items:
        label, cls = infer_label_class(name)
        if num_abnormal is not None:
            label = int(i < num_abnormal)
            cls = cls if label else NORMAL_CLASS
        out.append(LabelledFeatures(feats, label, cls))
    return out


def _pick_crop(arr: np.ndarray, crop: Crop, path: Path) -> np.ndarray:
    """``(T, C, D)`` → ``(T, D)``: the crop mean or one crop."""
    if crop == "mean":
        return arr.mean(axis=1)
    if not isinstance(crop, (int, np.integer)) or not 0 <= crop < arr.shape[1]:
        raise FeatureError(f"{path}: crop must be 'mean' or an index below {arr.shape[1]}, got {crop!r}")
    return arr[:, int(crop)]


def read_rtfm(list_file: str | os.PathLike, root: str | os.PathLike | None = None, crop: Crop = "mean",
              num_abnormal: int | None = None, failed: dict[str, str] | None = None) -> list[LabelledFeatures]:
    """RTFM: a list of per-video ``.npy`` files of shape ``(T, C, D)`` (C crops) → clip features ``(T, D)``.

    Args:
        list_file: one path per line (abnormal videos first, by RTFM convention).
        root: folder the paths are relative to (default: the list file's folder).
        crop: ``"mean"`` over the C crops, or one crop index.
        num_abnormal: the first ``num_abnormal`` entries are abnormal (for names without a convention).
        failed: if given, unreadable videos are recorded here (path → reason) and left out instead of raising.
    """
    list_file = Path(list_file)
    paths = [(i, _resolve(entry, list_file, root)) for i, entry in enumerate(_read_list(list_file))]

    def read(item: tuple[int, Path]) -> tuple[int, str, Path, VideoFeatures]:
        i, path = item
        clip = _pick_crop(_load_npy(path, 3, "RTFM (T, crops, D)"), crop, path)
        return i, video_name(path), path, _make(video_name(path), clip, "rtfm", path)
    return _labels(_each(paths, read, failed, lambda item: str(item[1])), num_abnormal)


def _crop_files(stem_path: Path) -> dict[int, Path]:
    """``{k: <stem>__k.npy}`` for the crop files present next to ``stem_path``."""
    folder, name = stem_path.parent, stem_path.name
    found = {}
    if folder.is_dir():
        for p in folder.glob(f"{glob.escape(name)}__*.npy"):
            m = _CROP_RE.match(p.stem)
            if m and m.group("name") == name:
                found[int(m.group("crop"))] = p
    return found


def _read_crops(name: str, files: dict[int, Path], crop: Crop, crops: int | None, where: str) -> np.ndarray:
    """Load a video's crop files ``{k: path}`` and return ``(T, D)``: their mean or crop ``crop``."""
    if not files:
        raise FeatureError(f"{where}: no crop files <{name}>__<k>.npy found for video {name}")
    expected = list(range(crops if crops is not None else max(files) + 1))
    missing = [k for k in expected if k not in files]
    if missing:
        raise FeatureError(f"{where}: video {name} is missing crop file(s) "
                           + ", ".join(f"{name}__{k}.npy" for k in missing))
    if crop != "mean":
        if not isinstance(crop, (int, np.integer)) or crop not in files:
            raise FeatureError(f"{where}: video {name} has no crop {crop!r} (crops {expected[0]}..{expected[-1]})")
        return _load_npy(files[int(crop)], 2, "per-crop (T, D)")
    arrays = [_load_npy(files[k], 2, "per-crop (T, D)") for k in expected]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise FeatureError(f"{where}: crop files of video {name} disagree in shape: {sorted(shapes)}")
    return np.mean(np.stack(arrays), axis=0)


def read_urdmu(source: str | os.PathLike, root: str | os.PathLike | None = None, crop: Crop = "mean",
               crops: int | None = None, num_abnormal: int | None = None, failed: dict[str, str] | None = None
               ) -> list[LabelledFeatures]:
    """UR-DMU / PEL4VAD: per-crop files ``<Name>__<k>.npy`` of shape ``(T, D)`` → clip features ``(T, D)``.

    Args:
        source: a folder of crop files, or a list file whose lines name videos or crop files (with or without
            ``__k`` and ``.npy``; several crops of one video collapse into one entry, in first-seen order).
        root: folder of the crop files for a list (default: the list's folder).
        crop: ``"mean"`` over the crops, or one crop index.
        crops: how many crops each video must have (10 for UCF, 5 for XD); default: 0..(highest present).
        num_abnormal: the first ``num_abnormal`` videos are abnormal.
    """
    source = Path(source)
    stems: dict[str, Path] = {}  # name -> path of the video's crop files without "__k.npy"
    if source.is_dir():
        for p in sorted(source.glob("*__*.npy")):
            m = _CROP_RE.match(p.stem)
            if m:
                stems.setdefault(m.group("name"), p.parent / m.group("name"))
        if not stems:
            raise FeatureError(f"{source}: no <Name>__<k>.npy crop files in this folder")
    else:
        for entry in _read_list(source):
            path = _resolve(entry, source, root)
            stem = path.name.removesuffix(".npy")
            m = _CROP_RE.match(stem)
            name = m.group("name") if m else stem
            folder = path.parent if path.parent.exists() else Path(root) if root is not None else source.parent
            stems.setdefault(name, folder / name)
    def read(item: tuple[int, tuple[str, Path]]) -> tuple[int, str, Path, VideoFeatures]:
        i, (name, stem_path) = item
        path = stem_path.parent / f"{name}__*.npy"
        return i, name, path, _make(name, _read_crops(name, _crop_files(stem_path), crop, crops, str(source)),
                                    "urdmu", path)
    return _labels(_each(list(enumerate(stems.items())), read, failed,
                         lambda item: str(item[1][1].parent / f"{item[1][0]}__*.npy")), num_abnormal)


def read_vadclip_csv(csv_file: str | os.PathLike, root: str | os.PathLike | None = None, crop: Crop = "mean",
                     failed: dict[str, str] | None = None) -> list[LabelledFeatures]:
    """VadCLIP: a CSV with ``path,label`` columns, one row per crop file ``(T, 512)`` → clip features ``(T, D)``.

    Rows of one video (``<Name>__<k>.npy``) are grouped in first-seen order; ``label`` gives the class (``Normal``
    or XD ``A`` → 0). ``crop="mean"`` averages the crops the CSV lists; an int picks that crop.
    """
    csv_file = Path(csv_file)
    if not csv_file.is_file():
        raise FeatureError(f"{csv_file}: CSV file not found")
    _, rows = read_csv_table(csv_file, ("path", "label"), "VadCLIP CSV", FeatureError)
    if not rows:
        raise FeatureError(f"{csv_file}: CSV has no rows")
    videos: dict[str, tuple[dict[int, Path], str]] = {}
    for lineno, row in rows:
        if not row["path"]:
            raise FeatureError(f"{csv_file}:{lineno}: empty path")
        path = _resolve(row["path"], csv_file, root)
        stem = path.name.removesuffix(".npy")
        m = _CROP_RE.match(stem)
        name, k = (m.group("name"), int(m.group("crop"))) if m else (stem, 0)
        files, label_text = videos.setdefault(name, ({}, row["label"]))
        files[k] = path

    def read(item: tuple[str, tuple[dict[int, Path], str]]) -> LabelledFeatures:
        name, (files, label_text) = item
        if crop == "mean":
            arrays = [_load_npy(files[k], 2, "VadCLIP (T, D)") for k in sorted(files)]
            if len({a.shape for a in arrays}) != 1:
                raise FeatureError(f"{csv_file}: crop files of video {name} disagree in shape")
            clip = np.mean(np.stack(arrays), axis=0)
        else:
            if crop not in files:
                raise FeatureError(f"{csv_file}: video {name} has no crop {crop!r} listed")
            clip = _load_npy(files[int(crop)], 2, "VadCLIP (T, D)")
        label, cls = _label_from_text(label_text)
        return LabelledFeatures(_make(name, clip, "vadclip", files[min(files)]), label,
                                cls or infer_label_class(name)[1])
    return _each(list(videos.items()), read, failed, lambda item: str(item[1][0][min(item[1][0])]))


def detect_format(path: str | os.PathLike) -> str:
    """Which format a path holds: ``vadgraph`` | ``rtfm`` | ``urdmu`` | ``vadclip``; FeatureError if none."""
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST_FILE).is_file() or any(path.glob("*.npz")) or any(path.glob(f"{VIDEO_DIR}/*.npz")):
            return "vadgraph"
        if any(_CROP_RE.match(p.stem) for p in path.glob("*__*.npy")):
            return "urdmu"
        raise FeatureError(f"{path}: folder holds neither vadgraph .npz features nor <Name>__<k>.npy crop files")
    if not path.is_file():
        raise FeatureError(f"{path}: not found")
    if path.suffix.lower() == ".csv":
        header = read_text(path, "CSV file", FeatureError).splitlines()[:1]
        if header and {"path", "label"} <= {c.strip() for c in header[0].replace(";", ",").split(",")}:
            return "vadclip"
        raise FeatureError(f"{path}: CSV without path,label columns is not a VadCLIP feature list")
    if path.suffix.lower() == ".npz":
        return "vadgraph"
    if path.suffix.lower() == ".npy":
        return "urdmu" if _CROP_RE.match(path.stem) else "rtfm"
    first = Path(_read_list(path)[0]).name
    if _CROP_RE.match(first.removesuffix(".npy")) or not first.endswith(".npy"):
        return "urdmu"
    return "rtfm"  # per-video .npy entries: RTFM's convention (a 2-D file is reported as such when read)


def read_peer_features(path: str | os.PathLike, fmt: str = "auto", **kwargs) -> list[LabelledFeatures]:
    """Read a peer format (``rtfm`` | ``urdmu`` | ``vadclip`` or ``auto`` via :func:`detect_format`).

    ``failed={}`` among ``kwargs`` collects unreadable videos instead of raising on the first."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers = {"rtfm": read_rtfm, "urdmu": read_urdmu, "vadclip": read_vadclip_csv}
    if fmt not in readers:
        raise FeatureError(f"{path}: format {fmt!r} is not a peer format (one of {', '.join(readers)})")
    return readers[fmt](path, **kwargs)
