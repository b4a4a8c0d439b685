"""Stage 3, batches → scores: the anomaly model, its heads and checkpoints (no video, no UI imports).

The names below are imported on first use, so :mod:`vad.models.config` loads without torch.
"""
from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, [], {
    'anomaly': ['AnomalyModel', 'AnomalyOutput'],
    'config': ['ModelConfig'],
})
