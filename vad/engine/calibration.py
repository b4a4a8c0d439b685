"""Operating thresholds chosen on validation videos and stored with the model.

A score of 0.5 means nothing in particular for a model trained with weak labels, and nothing at all for a
one-class model, so every way of making a model stores thresholds picked on its *validation* videos:

* ``far``: the threshold at which ``target_far`` (default 1%) of the frames of the normal validation videos
  score at or above it: the false-alarm rate an operator asked for.
* ``f1``: the threshold of best frame-level F1 on the validation videos, where they have frame labels.

They live in the checkpoint's ``config.json`` under ``"thresholds"``; :func:`stored_threshold` reads them back
(``vad score``, ``vad serve``, ``vad eval`` and the plots use the ``far`` one unless ``--threshold`` is given).
A checkpoint from before calibration has none: it falls back to 0.5 with a one-line notice.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vad.data.dataset import VideoRecord
from vad.engine.config import CalibrationConfig
from vad.engine.inference import score_records

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.5  # used when a checkpoint stores no threshold and none is given


@dataclass(frozen=True)
class Threshold:
    """The threshold a run uses and where it came from (said to the user)."""

    value: float  # frames scoring >= value are abnormal
    source: str  # "given" | "far" | "f1" | "default"
    description: str  # one line, e.g. "0.731 (calibrated: 1% false alarms on 6 normal validation videos)"


def far_threshold(normal_frames: np.ndarray, target_far: float) -> tuple[float, float]:
    """Threshold with at most ``target_far`` of ``normal_frames`` (``(T,)`` scores) at or above it.

    The threshold lies midway between the k-th and (k+1)-th highest score, k = floor(target_far * T), so the
    achieved rate on these frames is at most the target and ties cannot push it over. Returns
    ``(threshold, achieved FAR on normal_frames)``; the threshold is clipped to [0, 1].
    """
    s = np.sort(np.asarray(normal_frames, dtype=np.float64).reshape(-1))[::-1]
    if s.size == 0:
        raise ValueError("far_threshold: no normal frames")
    k = int(math.floor(target_far * s.size))
    if k >= s.size:
        t = float(s[-1])
    elif k == 0 or s[k - 1] == s[k]:
        t = float(np.nextafter(s[k], np.inf))  # just above the (k+1)-th score (ties stay below)
    else:
        t = 0.5 * float(s[k - 1] + s[k])
    t = float(min(1.0, max(0.0, t)))
    return t, float((s >= t).mean())


def f1_threshold(frames: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Threshold of best F1 of ``frames`` ``(T,)`` against 0/1 ``labels`` ``(T,)``: ``(threshold, F1)``."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(labels).reshape(-1),
                                                           np.asarray(frames, dtype=np.float64).reshape(-1))
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else DEFAULT_THRESHOLD, float(f1[best])


def thresholds_from_scores(frame_scores: Mapping[str, np.ndarray], normal: Sequence[str],
                           gt: Mapping[str, np.ndarray] | None, config: CalibrationConfig) -> tuple[dict, list[str]]:
    """The ``"thresholds"`` entry of a checkpoint from validation frame scores, and notes on what is missing.

    ``normal``: names of the normal videos (their frames set the ``far`` threshold); ``gt``: frame labels for
    the ``f1`` threshold, used only when every scored video has them.
    """
    out: dict = {}
    notes: list[str] = []
    if normal:
        value, achieved = far_threshold(np.concatenate([frame_scores[n] for n in normal]), config.target_far)
        out["far"] = {"value": value, "target_far": config.target_far, "achieved_far": achieved,
                      "num_videos": len(normal), "num_frames": int(sum(len(frame_scores[n]) for n in normal))}
    else:
        notes.append("no normal validation videos: no false-alarm threshold stored (0.5 is used)")
    if gt is not None and frame_scores and all(n in gt for n in frame_scores):
        labels = np.concatenate([np.asarray(gt[n]).reshape(-1) for n in frame_scores])
        if labels.any():
            value, f1 = f1_threshold(np.concatenate([frame_scores[n] for n in frame_scores]), labels)
            out["f1"] = {"value": value, "f1": f1, "num_videos": len(frame_scores)}
    return out, notes


def calibrate(model: torch.nn.Module, records: Sequence[VideoRecord], text: np.ndarray | None,
              levels: Sequence[str], gt: Mapping[str, np.ndarray] | None = None,
              config: CalibrationConfig = CalibrationConfig(), device: torch.device | str = "cpu"
              ) -> tuple[dict, list[str]]:
    """Score the validation ``records`` with ``model`` and pick the stored thresholds (see the module doc)."""
    scored = score_records(model, records, text, levels, device)
    frames = {n: s.frames for n, s in scored.items()}
    normal = [r.name for r in records if r.label == 0]
    return thresholds_from_scores(frames, normal, gt, config)


def stored_threshold(info: Mapping, given: float | None = None) -> Threshold:
    """The threshold to use with a checkpoint whose ``config.json`` is ``info``.

    ``given`` (an explicit ``--threshold``) wins; else the stored ``far`` threshold, else ``f1``; else 0.5 with
    a one-line notice logged (a checkpoint from before calibration).
    """
    if given is not None:
        return Threshold(float(given), "given", f"{given:g} (given)")
    stored = info.get("thresholds") or {}
    far = stored.get("far")
    if far and "value" in far:
        return Threshold(float(far["value"]), "far", (
            f"{far['value']:.4g} (calibrated: {100 * far['target_far']:g}% false alarms on "
            f"{far.get('num_videos', '?')} normal validation videos)"))
    f1 = stored.get("f1")
    if f1 and "value" in f1:
        return Threshold(float(f1["value"]), "f1", f"{f1['value']:.4g} (calibrated: best validation F1)")
    log.warning("this model stores no calibrated threshold (made before calibration): using %g; set "
                "`segments.threshold` to choose one", DEFAULT_THRESHOLD)
    return Threshold(DEFAULT_THRESHOLD, "default", f"{DEFAULT_THRESHOLD:g} (default: the model stores none)")
