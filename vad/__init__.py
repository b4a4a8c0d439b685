"""vadgraph: video anomaly detection with LEGO graph fusion and Graph4MM hop-diffused attention.

The pipeline's stages are subpackages that import top-down only
(``features`` ← ``data`` ← ``models`` ← ``engine``); the names users need are re-exported here and
imported lazily, so ``import vad`` stays cheap and ``import vad.models`` never loads the video or UI stack.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VideoFeatures": "vad.features.store",
    "VideoMeta": "vad.features.store",
    "TextFeatures": "vad.features.store",
    "extract_videos": "vad.features.extract",
    "ExtractConfig": "vad.features.config",
    "load_dataset": "vad.data.dataset",
    "AnomalyModel": "vad.models.anomaly",
    "ModelConfig": "vad.models.config",
    "load_checkpoint": "vad.models.checkpoint",
    "train": "vad.engine.train",
    "TrainConfig": "vad.engine.config",
    "evaluate": "vad.engine.evaluate",
    "Scorer": "vad.engine.score",
    "ScoreConfig": "vad.engine.config",
    "score_videos": "vad.engine.score_job",
    "LiveConfig": "vad.engine.live",
    "run_live": "vad.engine.live",
    "VadError": "vad.errors",
}
_ALIASES = {"train": "train_from_paths", "evaluate": "evaluate_dir"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vad' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
