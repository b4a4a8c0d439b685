"""Stage 3, batches → scores: the anomaly model, its heads and checkpoints (no video, no UI imports).

The names below are imported on first use, so :mod:`vad.models.config` loads without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"AnomalyModel": "vad.models.anomaly", "AnomalyOutput": "vad.models.anomaly",
            "ModelConfig": "vad.models.config"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
