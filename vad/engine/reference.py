"""A training-free reference detector: each snippet's distance from its video's median, per level.

It is the crudest reading of "an anomaly is what sets a snippet apart in its video", with no learning at all, so
it tells what the learned models must beat on a benchmark: a model below it has learned nothing useful.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vad.data.dataset import Dataset
from vad.engine.metrics import expand_to_frames


def median_distance_scores(dataset: Dataset, split: str = "test", levels: Sequence[str] = ("clip", "motion")
                           ) -> dict[str, np.ndarray]:
    """Frame scores ``name → (T,)`` of the reference on ``split``.

    Per level, ``|x_i - median_j x_j|`` after standardising each dimension by its spread over the train split;
    levels summed; min-max scaled per video. Levels the features lack are skipped.
    """
    train = dataset.split("train") or list(dataset.records.values())
    present = [lvl for lvl in levels if all(getattr(r.features, lvl) is not None for r in dataset.records.values())]
    scale = {lvl: np.concatenate([_centred(getattr(r.features, lvl)) for r in train]).std(0) + 1e-6 for lvl in present}
    scores = {}
    for r in dataset.split(split):
        f = r.features
        d = sum(np.linalg.norm(_centred(getattr(f, lvl)) / scale[lvl], axis=1) for lvl in present)
        d = (d - d.min()) / (d.max() - d.min() + 1e-9)
        scores[r.name] = expand_to_frames(d, f.num_video_frames, f.meta.snippet_len)
    return scores


def _centred(x: np.ndarray) -> np.ndarray:
    """``(N, ...)`` minus its median over snippets, flattened to ``(N, C)``."""
    x = x.reshape(len(x), -1)
    return x - np.median(x, axis=0)
