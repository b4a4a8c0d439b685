"""``VideoFeatures``: the multi-level CLIP features of one video, and their on-disk form (one ``.npz``)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vad.errors import FeatureError
from vad.io import save_npz_atomic
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

    def __post_init__(self) -> None:
        self.clip = np.asarray(self.clip, dtype=np.float32)
        if self.clip.ndim != 2 or self.clip.shape[0] == 0:
            raise FeatureError(f"{self.meta.name}: clip features must be (N, D) with N >= 1, got {self.clip.shape}")
        n, d = self.clip.shape
        for level, arr in (("frame", self.frame), ("patch", self.patch)):
            if arr is None:
                continue
            arr = np.asarray(arr, dtype=np.float32)
            if arr.ndim != 3 or arr.shape[0] != n or arr.shape[2] != d:
                raise FeatureError(
                    f"{self.meta.name}: {level} features must be (N={n}, *, D={d}), got {tuple(arr.shape)}"
                )
            setattr(self, level, arr)
        self._check_motion(n)
        for level in self.levels():
            if not np.isfinite(getattr(self, level)).all():
                raise FeatureError(f"{self.meta.name}: {level} features hold NaN or Inf values")
        if self.frame_indices is not None:
            self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
            if self.frame_indices.shape[0] != n:
                raise FeatureError(f"{self.meta.name}: frame_indices has {self.frame_indices.shape[0]} rows, need {n}")

    def _check_motion(self, n: int) -> None:
        if self.motion is not None:
            self.motion = np.asarray(self.motion, dtype=np.float32)
            if self.motion.ndim != 2 or self.motion.shape[0] != n:
                raise FeatureError(f"{self.meta.name}: motion features must be (N={n}, M), got {self.motion.shape}")

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
        for key in ("frame", "patch", "frame_indices", "motion"):
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
                meta = VideoMeta(**json.loads(str(data["meta_json"])))
                return cls(
                    clip=data["clip"],
                    meta=meta,
                    frame=data["frame"] if "frame" in data else None,
                    patch=data["patch"] if "patch" in data else None,
                    frame_indices=data["frame_indices"] if "frame_indices" in data else None,
                    motion=data["motion"] if "motion" in data else None,
                )
        except FeatureError:
            raise
        except Exception as exc:  # zip errors, missing keys, bad JSON: all mean "not our feature file"
            raise FeatureError(f"{path}: not a vadgraph feature file ({type(exc).__name__}: {exc})") from exc


@dataclass
class TextFeatures:
    """CLIP text embeddings of the prompt set, computed once per run. ``embeddings``: ``(K, D)``."""

    prompts: list[str]
    embeddings: np.ndarray
    backbone: str = ""
    weights: str = ""
    templates: list[str] = field(default_factory=list)

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
                return cls(embeddings=data["embeddings"].astype(np.float32), **meta)
        except Exception as exc:
            raise FeatureError(f"{path}: not a vadgraph text-feature file ({type(exc).__name__}: {exc})") from exc

# ------------------------------------------------------------------------------------ feature directory



def feature_path(out_dir: str | os.PathLike, name: str) -> Path:
    """Where the features of video ``name`` live inside a feature directory."""
    return Path(out_dir) / f"{name}.npz"


def load_manifest(out_dir: str | os.PathLike) -> dict:
    """The feature directory's manifest (an empty one if there is none yet)."""
    path = Path(out_dir) / MANIFEST_FILE
    if not path.exists():
        return {"videos": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FeatureError(f"{path}: corrupt manifest ({exc})") from exc


def load_feature_dir(feat_dir: str | os.PathLike) -> tuple[dict[str, VideoFeatures], TextFeatures | None]:
    """All ``ok`` videos of a feature directory written by ``vad extract``, and its text features."""
    root = Path(feat_dir)
    if not root.is_dir():
        raise FeatureError(f"{root}: feature directory not found")
    manifest = load_manifest(root)
    names = [n for n, e in manifest.get("videos", {}).items() if e.get("status") == "ok"]
    if not names:
        names = sorted(p.stem for p in root.glob("*.npz") if p.name != TEXT_FILE)
    if not names:
        raise FeatureError(f"{root}: no features in this directory (run `vad extract ... --out {root}`)")
    feats = {n: VideoFeatures.load(feature_path(root, n)) for n in names}
    text = TextFeatures.load(root / TEXT_FILE) if (root / TEXT_FILE).exists() else None
    return feats, text
