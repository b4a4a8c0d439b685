"""Check a dataset folder against a recipe before anything runs: find the split lists and the ground truth, read
the splits and labels, and find each listed video's video file or published feature files.

Every problem found is collected, one line per missing part, and raised together as a :class:`LayoutError`, so
one run tells the user everything that is missing rather than the first thing.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vad.data.formats import detect_format, video_name
from vad.data.groundtruth import list_names
from vad.engine.recipes.datasets import GT_PART, SPLIT_PARTS, Part, Recipe
from vad.errors import LayoutError, VadError
from vad.features.video import VIDEO_EXTENSIONS
from vad.io import one_line

SOURCES = ("auto", "videos", "features")
FEATURES_DIR = "features"  # default folder of published features under the root
FEATURE_FORMS = ("per-video NAME.npy or NAME_i3d.npy of shape (T, crops, D) (RTFM), or per-crop NAME__k.npy of "
                 "shape (T, D) (UR-DMU, XD-Violence, VadCLIP)")


@dataclass
class Layout:
    """A dataset folder that holds everything its recipe needs."""

    root: Path
    files: dict[str, Path]  # part key -> the file (or folder) found
    splits: dict[str, list[str]]  # "train" / "test" -> video names in list order
    labels: dict[str, tuple[int, str]]  # video name -> (label, class)
    kind: str  # "videos" (features are extracted) or "features" (published ones are read)
    fmt: str  # feature format the run reads: vadgraph (extracted here) | rtfm | urdmu (published)
    inputs: dict[str, list[Path]] = field(default_factory=dict)  # name -> its video file, or its feature files


def resolve(path: str | os.PathLike, root: Path) -> Path:
    """A user-given path: as given when it exists (or is absolute), else relative to the dataset root."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else root / p


def locate(root: Path, part: Part, override: str | None) -> Path | None:
    """The part's file (or folder): the override when given, else the shallowest match of its names under root."""
    if override:
        p = resolve(override, root)
        return p if (p.is_dir() if part.folder else p.is_file()) else None
    for name in part.names:
        found = [p for p in root.rglob(name) if (p.is_dir() if part.folder else p.is_file())]
        if found:
            return min(found, key=lambda p: (len(p.parts), str(p)))
    return None


def _missing_part(part: Part, root: Path, override: str | None) -> str:
    if override:
        return f"{part.what}: {resolve(override, root)} not found (given with `{part.key}`)"
    names = " or ".join(part.names)
    return f"{part.what}: no {names} under {root} (from {part.source}; or give its path with `{part.key}`)"


def _read_splits(files: Mapping[str, Path], missing: list[str]) -> dict[str, list[str]]:
    """Video names per split from the list files found; a video in both lists is a problem (test leakage)."""
    splits = {}
    for split, key in SPLIT_PARTS.items():
        if key in files:
            try:
                splits[split] = list_names(files[key])
            except VadError as exc:
                missing.append(one_line(str(exc)))
                continue
            if not splits[split]:
                missing.append(f"{files[key]}: the {split} list is empty")
    both = set(splits.get("train", ())) & set(splits.get("test", ()))
    if both:
        missing.append(f"{len(both)} video(s) are in both the train and the test list (first: {sorted(both)[0]}): "
                       f"the test split must be unseen")
    return splits


def _read_labels(recipe: Recipe, files: Mapping[str, Path], splits: Mapping[str, list[str]],
                 missing: list[str]) -> dict[str, tuple[int, str]]:
    """Each listed video's (label, class); unknown labels and a split without both classes are problems."""
    labels: dict[str, tuple[int, str]] = {}
    gt = files.get(GT_PART)
    if gt is None and recipe.labels_from_ground_truth:
        return labels  # labels live in the ground truth, which is reported missing already
    try:
        for names in splits.values():
            labels.update({n: recipe.label(n, gt) for n in names})
    except VadError as exc:
        missing.append(one_line(str(exc)))
        return labels
    unknown = [n for n, (label, _) in labels.items() if label < 0]
    if unknown:
        missing.append(f"labels: {len(unknown)} listed video(s) have names that do not say normal or abnormal "
                       f"(first: {unknown[0]}); is this a {recipe.title} list?")
    for split, names in splits.items():
        kinds = {labels[n][0] for n in names if n in labels}
        if names and kinds and not {0, 1} <= kinds:
            missing.append(f"the {split} list holds only {'abnormal' if 1 in kinds else 'normal'} videos: training "
                           f"and evaluation need both")
    return labels


def _check_annotated(recipe: Recipe, files: Mapping[str, Path], splits: Mapping[str, list[str]],
                     labels: Mapping[str, tuple[int, str]], missing: list[str]) -> None:
    """Every test video the ground truth must cover (all, or the abnormal ones) has an entry there."""
    gt, test = files.get(GT_PART), splits.get("test")
    if gt is None or not test:
        return
    try:
        annotated = set(recipe.annotated(gt))
    except VadError as exc:
        missing.append(one_line(str(exc)))
        return
    need = [n for n in test if recipe.every_test_video_annotated or labels.get(n, (0, ""))[0] == 1]
    lacking = [n for n in need if n not in annotated]
    if lacking:
        which = "test videos" if recipe.every_test_video_annotated else "abnormal test videos"
        missing.append(f"{recipe.part(GT_PART).what}: {len(lacking)} of {len(need)} {which} have no entry in {gt} "
                       f"(first: {lacking[0]})")


def index_videos(root: Path) -> dict[str, Path]:
    """Video files under ``root`` by video name (the first in path order when a name repeats, as UCF-Crime's
    duplicated event-recognition copies do)."""
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            found.setdefault(video_name(p), p)
    return found


def index_features(folder: Path, skip: Path | None = None) -> dict[str, list[Path]]:
    """Published ``.npy`` feature files under ``folder`` by video name (crop files of a video together), except
    those under ``skip`` (ShanghaiTech's masks share the videos' names)."""
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*.npy")):
        if skip is not None and skip in p.parents:
            continue
        found.setdefault(video_name(p), []).append(p)
    return found


def _coverage(what: str, names: list[str], have: Mapping, where: Path, hint: str = "") -> str | None:
    """A one-line problem when some listed videos are not in ``have``, else None."""
    lacking = [n for n in names if n not in have]
    if not lacking:
        return None
    return (f"{what}: {len(lacking)} of {len(names)} listed videos have none under {where} (first: {lacking[0]})"
            + (f"; {hint}" if hint else ""))


def _feature_format(inputs: Mapping[str, list[Path]], folder: Path) -> tuple[str, str | None]:
    """``(format, problem)``: ``rtfm`` for per-video files, ``urdmu`` for per-crop ones; mixing them is a problem."""
    kinds: dict[str, str] = {}
    for name, files in inputs.items():
        kinds.setdefault(detect_format(files[0]), name)
    if len(kinds) > 1:
        return "", (f"features: {folder} mixes per-video files (e.g. {kinds['rtfm']}) and per-crop NAME__k.npy "
                    f"files (e.g. {kinds['urdmu']}); keep one form")
    return next(iter(kinds)), None


def find_inputs(recipe: Recipe, root: Path, names: list[str], source: str, features: str | None,
                skip: Path | None) -> tuple[str, str, dict[str, list[Path]], list[str]]:
    """``(kind, format, name -> input files, problems)``: the listed videos' video files, or their published
    features (``format`` is the one :func:`vad.data.dataset.load_dataset` reads them with).

    ``source="auto"`` takes the videos when every listed video has one, else the published features (``features``
    folder, default ``ROOT/features``) when every listed video has them; otherwise both shortfalls are reported.
    """
    if source not in SOURCES:
        raise VadError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    problems = []
    if source in ("auto", "videos"):
        videos = index_videos(root)
        problem = _coverage("videos", names, videos, root, recipe.video_hint)
        if problem is None:
            return "videos", "vadgraph", {n: [videos[n]] for n in names}, []
        problems.append(problem)
    if source in ("auto", "features"):
        folder = resolve(features or FEATURES_DIR, root)
        if not folder.is_dir():
            problems.append(f"features: no folder {folder} (published features: set `features` to a folder holding "
                            f"{FEATURE_FORMS})")
            return "", "", {}, problems
        feats = index_features(folder, skip)
        problem = _coverage("features", names, feats, folder, f"expected {FEATURE_FORMS}")
        if problem is None:
            inputs = {n: feats[n] for n in names}
            fmt, problem = _feature_format(inputs, folder)
            if problem is None:
                return "features", fmt, inputs, []
        problems.append(problem)
    return "", "", {}, problems


def check_layout(recipe: Recipe, root: str | os.PathLike, overrides: Mapping[str, str | None], source: str = "auto",
                 features: str | None = None) -> Layout:
    """Everything the recipe needs under ``root``, or a :class:`LayoutError` naming each missing part.

    ``overrides`` maps part keys (``train_list``, ``test_list``, ``ground_truth``) to user-given paths.
    """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder", [f"dataset root: {root} does not exist or is not a folder"])
    missing: list[str] = []
    files = {}
    for part in recipe.parts:
        found = locate(root, part, overrides.get(part.key))
        if found is None:
            missing.append(_missing_part(part, root, overrides.get(part.key)))
        else:
            files[part.key] = found
    splits = _read_splits(files, missing)
    labels = _read_labels(recipe, files, splits, missing)
    _check_annotated(recipe, files, splits, labels, missing)
    kind, fmt, inputs = "", "", {}
    if splits:
        names = [n for split in splits.values() for n in split]
        kind, fmt, inputs, problems = find_inputs(recipe, root, names, source, features,
                                                  files.get(GT_PART) if recipe.part(GT_PART).folder else None)
        missing.extend(problems)
    if missing:
        raise LayoutError(f"{root}: not a complete {recipe.title} layout ({len(missing)} problem(s), one per line "
                          f"below)", missing)
    return Layout(root, files, splits, labels, kind, fmt, inputs)
