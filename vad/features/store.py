"""``VideoFeatures``: the multi-level CLIP features of one video, and their on-disk form (one ``.npz``)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vad.errors import FeatureError
from vad.io import read_json_object, save_npz_atomic
from vad.names import FEATURE_LEVELS, MANIFEST_FILE, TEXT_FILE

FORMAT_VERSION = 1


@dataclass(frozen=True)
class VideoMeta:
    """Where the features came from and how snippets map back to frames and seconds."""

    name: str  # video stem, the key used by labels and ground truth
    path: str = ""  # source file ("" for features read from another project's files)
    fps: float = 30.0  # frames per second of the source
    num_frames: int = 0  # frames in the source video
    snippet_len: int = 16  # S: source frames per snippet
    backbone: str = ""  # open_clip model name, or the peer format's name
    weights: str = ""  # pretrained tag / checkpoint file / "random"
    source_format: str = "vadgraph"  # vadgraph | rtfm | urdmu | vadclip


@dataclass
class VideoFeatures:
    """Features of one video at several visual levels, N snippets of S frames each.

    Shapes:
        clip: ``(N, D)`` one embedding per snippet (mean of its sampled frames' embeddings).
        frame: ``(N, F, D)`` embeddings of F frames sampled inside each snippet, or None.
        patch: ``(N, P, D)`` ViT patch tokens of each snippet's key frame pooled to a grid, or None.
        frame_indices: ``(N, F)`` source frame index of each sampled frame.
        motion: ``(N, M)`` optical-flow summary of each snippet (see :mod:`vad.features.motion`), or None
            (features extracted before the motion level existed, or by another project).
    """

    clip: np.ndarray
    meta: VideoMeta
    frame: np.ndarray | None = None
    patch: np.ndarray | None = None
    frame_indices: np.ndarray | None = None
    motion: np.ndarray | None = None

    frame_times: np.ndarray | None = None  # (T,) start time of each source frame in seconds, for variable frame
    # rate sources only (None: frame i starts at i / fps)

    def __post_init__(self) -> None:
        name = self.meta.name
        self.clip = np.asarray(self.clip, dtype=np.float32)
        if self.clip.ndim != 2 or 0 in self.clip.shape:
            raise FeatureError(f"{name}: clip features must be (N, D) with N, D >= 1, got {self.clip.shape}")
        n, d = self.clip.shape
        for level in ("frame", "patch"):
            self._check_level(level, 3, lambda a: a.shape[0] == n and a.shape[2] == d, f"(N={n}, *, D={d})")
        self._check_level("motion", 2, lambda a: a.shape[0] == n, f"(N={n}, M)")
        for level in self.levels():
            if not np.isfinite(getattr(self, level)).all():
                raise FeatureError(f"{name}: {level} features hold NaN or Inf values")
        if self.frame_indices is not None:
            self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
            if self.frame_indices.shape[0] != n:
                raise FeatureError(f"{name}: frame_indices has {self.frame_indices.shape[0]} rows, need {n}")
        if self.frame_times is not None:
            t = self.frame_times = np.asarray(self.frame_times, dtype=np.float64)
            if t.ndim != 1 or len(t) != self.num_video_frames or not np.isfinite(t).all() or (np.diff(t) < 0).any():
                raise FeatureError(f"{name}: frame_times must be {self.num_video_frames} finite, non-decreasing "
                                   f"seconds, got shape {t.shape}")

    def _check_level(self, level: str, ndim: int, fits, want: str) -> None:
        """Make level ``level`` float32 and check its rank and shape (``fits``) against the clip level."""
        arr = getattr(self, level)
        if arr is None:
            return
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != ndim or not fits(arr):
            raise FeatureError(f"{self.meta.name}: {level} features must be {want}, got {tuple(arr.shape)}")
        setattr(self, level, arr)

    @property
    def num_snippets(self) -> int:
        """N, the number of snippets."""
        return int(self.clip.shape[0])

    @property
    def dim(self) -> int:
        """D, the embedding width."""
        return int(self.clip.shape[1])

    @property
    def num_video_frames(self) -> int:
        """Frames that snippet scores expand to: the source's count, or N * S when it is unknown."""
        return self.meta.num_frames or self.num_snippets * self.meta.snippet_len

    def levels(self) -> list[str]:
        """Names of the levels present, in pipeline order."""
        return ["clip"] + [lvl for lvl in FEATURE_LEVELS[1:] if getattr(self, lvl) is not None]

    def save(self, path: str | os.PathLike) -> None:
        """Write one ``.npz`` atomically (no pickled objects inside, so loading never unpickles)."""
        arrays = {"clip": self.clip, "meta_json": np.array(json.dumps(asdict(self.meta)))}
        arrays["format_version"] = np.array(FORMAT_VERSION)
        for key in ("frame", "patch", "frame_indices", "motion", "frame_times"):
            value = getattr(self, key)
            if value is not None:
                arrays[key] = value
        save_npz_atomic(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> VideoFeatures:
        """Read a file written by :meth:`save`; a clear ``FeatureError`` for anything else."""
        path = Path(path)
        if not path.is_file():
            raise FeatureError(f"{path}: feature file not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta_json"]))
                if not isinstance(meta, dict):
                    raise FeatureError(f"{path}: meta_json must be a JSON object, got {type(meta).__name__}")
                meta = VideoMeta(**meta)
                return cls(
                    clip=data["clip"],
                    meta=meta,
                    frame=data["frame"] if "frame" in data else None,
                    patch=data["patch"] if "patch" in data else None,
                    frame_indices=data["frame_indices"] if "frame_indices" in data else None,
                    motion=data["motion"] if "motion" in data else None,
                    frame_times=data["frame_times"] if "frame_times" in data else None,
                )
        except FeatureError as exc:
            raise FeatureError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
        except Exception as exc:  # zip errors, missing keys, bad JSON: all mean "not our feature file"
            raise FeatureError(f"{path}: not a vadgraph feature file ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc


@dataclass
class TextFeatures:
    """CLIP text embeddings of the prompt set, computed once per run. ``embeddings``: ``(K, D)``."""

    prompts: list[str]
    embeddings: np.ndarray
    backbone: str = ""
    weights: str = ""
    templates: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2 or 0 in self.embeddings.shape:
            raise FeatureError(f"embeddings must be (K prompts, D), got shape {self.embeddings.shape}")
        if not isinstance(self.prompts, list) or not all(isinstance(p, str) for p in self.prompts):
            raise FeatureError("prompts must be a list of strings")
        if len(self.prompts) != len(self.embeddings):
            raise FeatureError(f"{len(self.embeddings)} embeddings for {len(self.prompts)} prompts (one each)")
        if not np.isfinite(self.embeddings).all():
            raise FeatureError("embeddings hold NaN or Inf values")

    def save(self, path: str | os.PathLike) -> None:
        """Write ``text.npz`` atomically."""
        save_npz_atomic(
            path,
            embeddings=np.asarray(self.embeddings, dtype=np.float32),
            meta_json=np.array(json.dumps({"prompts": self.prompts, "backbone": self.backbone,
                                           "weights": self.weights, "templates": self.templates})),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextFeatures:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta_json"]))
                if not isinstance(meta, dict):
                    raise FeatureError(f"meta_json must be a JSON object, got {type(meta).__name__}")
                return cls(embeddings=data["embeddings"], **meta)
        except FeatureError as exc:
            raise FeatureError(f"{path}: {exc}") from None
        except Exception as exc:
            raise FeatureError(f"{path}: not a vadgraph text-feature file ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc

# ------------------------------------------------------------------------------------ feature directory
# Per-video files live in a subfolder, so no video name (``text.mp4``, ``manifest.mp4``) can collide with the
# directory's own files; directories written before that (``NAME.npz`` at the top) are still read.

VIDEO_DIR = "videos"  # subfolder of a feature directory holding one NAME.npz per video


def feature_path(out_dir: str | os.PathLike, name: str) -> Path:
    """Where the features of video ``name`` are written inside a feature directory."""
    return Path(out_dir) / VIDEO_DIR / f"{name}.npz"


def find_feature_file(out_dir: str | os.PathLike, name: str) -> Path:
    """Where the features of video ``name`` are: the current layout, else the old top-level one."""
    path = feature_path(out_dir, name)
    old = Path(out_dir) / f"{name}.npz"
    if not path.exists() and f"{name}.npz" != TEXT_FILE and old.is_file():
        return old
    return path


def load_manifest(out_dir: str | os.PathLike) -> dict:
    """The feature directory's manifest (an empty one if there is none yet); checked to be one."""
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return {"videos": {}}
    manifest = read_json_object(path, "manifest", FeatureError)
    videos = manifest.setdefault("videos", {})
    if not isinstance(videos, dict) or not all(isinstance(e, dict) for e in videos.values()):
        raise FeatureError(f"{path}: field 'videos' must be an object of name -> entry objects")
    prompts = manifest.get("prompts", [])
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise FeatureError(f"{path}: field 'prompts' must be a list of strings")
    return manifest


def load_feature_dir(feat_dir: str | os.PathLike, failed: dict[str, str] | None = None
                     ) -> tuple[dict[str, VideoFeatures], TextFeatures | None]:
    """All ``ok`` videos of a feature directory written by ``vad extract``, and its text features.

    With ``failed`` given, a video whose file is unreadable or holds bad values is recorded there (path →
    reason) and left out; without it, the first such video raises.
    """
    root = Path(feat_dir)
    if not root.is_dir():
        raise FeatureError(f"{root}: feature directory not found")
    manifest = load_manifest(root)
    names = [n for n, e in manifest["videos"].items() if e.get("status") == "ok"]
    if not names:
        found = [p for p in (*root.glob("*.npz"), *(root / VIDEO_DIR).glob("*.npz")) if p.name != TEXT_FILE]
        names = sorted({p.stem for p in found})
    if not names:
        raise FeatureError(f"{root}: no features in this directory (`vad extract` writes them)")
    feats = {}
    for name in names:
        path = find_feature_file(root, name)
        try:
            feats[name] = VideoFeatures.load(path)
        except FeatureError as exc:
            if failed is None:
                raise
            failed[str(path)] = str(exc)
    if not feats:
        raise FeatureError(f"{root}: none of its {len(names)} feature files can be read (first: "
                           f"{next(iter(failed.values()))})")
    return feats, _load_text(root, manifest, next(iter(feats.values())).dim)


def _load_text(root: Path, manifest: dict, dim: int) -> TextFeatures | None:
    """The directory's prompt embeddings, checked against the manifest and the feature width."""
    path = root / TEXT_FILE
    if not path.exists():
        if manifest.get("prompts"):
            raise FeatureError(f"{path}: missing ({MANIFEST_FILE} lists {len(manifest['prompts'])} prompts); run "
                               f"`vad extract` into this directory again to rewrite it")
        return None
    text = TextFeatures.load(path)
    if text.embeddings.shape[1] != dim:
        raise FeatureError(f"{path}: field 'embeddings' is {text.embeddings.shape[1]} wide, the video features "
                           f"are {dim} wide (made by another backbone)")
    if manifest.get("prompts") and manifest["prompts"] != text.prompts:
        raise FeatureError(f"{path}: field 'prompts' differs from the prompts in {MANIFEST_FILE}")
    return text
