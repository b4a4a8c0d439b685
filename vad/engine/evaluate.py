"""``vad eval``: score a split's videos with a trained model and compute the benchmark metrics."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from vad.data.dataset import Dataset, VideoRecord, load_dataset
from vad.data.groundtruth import GroundTruth, read_gt_npy, read_synth_gt, read_ucf_annotations
from vad.engine.calibration import stored_threshold
from vad.engine.inference import VideoScores, score_records
from vad.engine.metrics import EvalReport, evaluate
from vad.errors import VadError
from vad.models.checkpoint import LoadedModel, load_checkpoint
from vad.names import NORMAL_CLASS


@dataclass(frozen=True)
class GroundTruthSource:
    """Where frame labels come from: a ``vad synth`` directory, a ``gt-*.npy`` + list, or a UCF annotation file."""

    benchmark: str | None = None  # vad synth output directory
    gt_npy: str | None = None  # concatenated frame labels...
    gt_list: str | None = None  # ...and the list file they follow
    annotations: str | None = None  # UCF-Crime Temporal_Anomaly_Annotation.txt


def load_ground_truth(source: GroundTruthSource, records: list[VideoRecord], split: str | None) -> GroundTruth:
    """Frame labels for ``records``; normal videos without an entry get all-zero labels."""
    counts = {r.name: r.features.num_video_frames for r in records}
    if source.benchmark:
        gt = read_synth_gt(source.benchmark, split)
    elif source.gt_npy:
        if not source.gt_list:
            raise VadError("a gt-*.npy needs the list file it was built from (`gt_list`)")
        gt = read_gt_npy(source.gt_npy, source.gt_list, counts)
    elif source.annotations:
        gt = read_ucf_annotations(source.annotations, counts)
    else:
        gt = GroundTruth({}, {})
    frames, classes = {}, {}
    for r in records:
        if r.name in gt.frames:
            g = gt.frames[r.name]
            if len(g) != counts[r.name]:  # features of a video cover whole snippets: align lengths
                g = np.pad(g, (0, max(0, counts[r.name] - len(g))))[: counts[r.name]]
            frames[r.name], classes[r.name] = g, gt.classes.get(r.name, r.cls)
        elif r.label == 0:
            frames[r.name], classes[r.name] = np.zeros(counts[r.name], np.uint8), NORMAL_CLASS
        else:
            raise VadError(f"no frame ground truth for abnormal video {r.name} (give a benchmark directory "
                           f"(`benchmark`), a gt-*.npy with its list (`gt`, `gt_list`) or annotations (`annotations`))")
    return GroundTruth(frames, classes)


@dataclass
class EvalResult:
    """Metrics plus the per-video scores they came from."""

    report: EvalReport
    scores: dict[str, VideoScores]
    failed: dict[str, str] = field(default_factory=dict)  # feature file -> why that video was left out


def evaluate_model(loaded: LoadedModel, dataset: Dataset, split: str = "test",
                   gt_source: GroundTruthSource = GroundTruthSource(), threshold: float | None = None,
                   device: str = "cpu") -> EvalResult:
    """Score every video of ``split`` and compute frame AUC, AP, abnormal-only AUC, leak AUC, per-class AUC, and
    at the threshold (the model's calibrated one unless ``threshold`` is given) FAR and time to detect, per class
    too."""
    records = dataset.split(split) if split != "all" else list(dataset.records.values())
    if not records:
        raise VadError(f"no videos in split {split!r}")
    want = loaded.model.config.feature_dim
    if dataset.dim != want:
        raise VadError(f"the features are {dataset.dim} wide, the model was trained on {want}-wide features "
                       f"(made by another backbone or format)")
    gt = load_ground_truth(gt_source, records, None if split == "all" else split)
    scores = score_records(loaded.model, records, loaded.text, loaded.levels, device)
    chosen = stored_threshold(loaded.info, threshold)
    report = evaluate({n: s.frames for n, s in scores.items()}, gt.frames, gt.classes, chosen.value,
                      {r.name: r.features.meta.fps for r in records}, chosen.description)
    return EvalResult(report, scores)


def evaluate_dir(model_dir: str | os.PathLike, features: str | os.PathLike, labels: str | None = None,
                 split: str = "test", gt_source: GroundTruthSource = GroundTruthSource(), fmt: str = "auto",
                 threshold: float | None = None, device: str = "cpu") -> EvalResult:
    """:func:`evaluate_model` from paths: the library call behind ``vad eval``."""
    loaded = load_checkpoint(model_dir, device)
    dataset = load_dataset(features, labels or gt_source.benchmark, fmt, val_fraction=0.0, default_split=split)
    result = evaluate_model(loaded, dataset, split, gt_source, threshold, device)
    result.failed.update(dataset.failed)
    return result
