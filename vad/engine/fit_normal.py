"""One-class fitting: a model of *normal* footage only, no labels (``vad fit-normal``, ``arch="oneclass"``).

Protocol: every training video is normal. One pass streams them: each video is centred on its median (if
``center``) and every vector of every level (clip, each frame, each patch, motion: whatever the features carry)
is offered to a per-level :class:`vad.models.memory.Reservoir`, a uniform sample of at most ``memory.pool``
vectors. Each level is then standardised per dimension by its sample's std (what
``AnomalyModel.fit_input_scale`` computes, here without holding every vector) and reduced to ``memory.size``
vectors by greedy coreset or k-means. Fit memory is bounded by ``pool``, the model and its query time by ``size``,
whatever the hours of footage (``bench/oneclass.py`` measures it).

The held-out *normal* validation videos then set the score scale (each level's typical k-NN distance, the typical
neighbourhood distance, the median and 99th percentile of the combined score) and the stored thresholds
(:mod:`vad.engine.calibration`); validation videos with frame labels, if any, add the best-F1 threshold.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from vad.data.batch import collate
from vad.data.dataset import Dataset, VideoRecord, normal_dataset
from vad.engine.calibration import thresholds_from_scores
from vad.engine.config import FitNormalConfig
from vad.engine.metrics import expand_to_frames
from vad.errors import VadError
from vad.features.backbone import resolve_device
from vad.features.store import VideoFeatures
from vad.models.anomaly import AnomalyModel
from vad.models.checkpoint import save_checkpoint
from vad.models.config import ModelConfig
from vad.models.memory import Reservoir, reduce_memory
from vad.models.oneclass import LOGIT_GAIN, OneClassParts, level_items
from vad.names import FEATURE_LEVELS, VISUAL_LEVELS

log = logging.getLogger(__name__)


@dataclass
class FitNormalResult:
    """What a one-class fit produced."""

    model: AnomalyModel  # the fitted one-class model (eval mode)
    thresholds: dict  # the checkpoint's "thresholds" entry
    stats: dict  # vectors seen and kept per level, the score scale, seconds per stage
    notes: list[str] = field(default_factory=list)  # what was inferred or left out


def one_class_config(dataset: Dataset, config: FitNormalConfig) -> ModelConfig:
    """The ``arch="oneclass"`` model config for ``dataset``'s features (levels they lack are dropped)."""
    available = dataset.levels()
    first = next(iter(dataset.records.values())).features
    levels = tuple(lvl for lvl in config.levels if lvl in available)
    if not levels:
        raise VadError(f"the features have none of the levels {config.levels} (they have {available})")
    return ModelConfig(arch="oneclass", feature_dim=dataset.dim, levels=levels, center=config.center,
                       motion_dim=0 if first.motion is None else int(first.motion.shape[1]), num_prompts=0,
                       memory=config.memory, graph_terms=config.graph_terms)


class NormalFitter:
    """Fits a one-class :class:`AnomalyModel` on the normal videos of ``dataset``: :meth:`fit`, :meth:`save`.

    Memory from the train split's normal videos; score scale and thresholds from the val split (its normal
    videos; its frame labels ``val_gt``, where given, for the F1 threshold).
    """

    def __init__(self, dataset: Dataset, config: FitNormalConfig = FitNormalConfig(),
                 val_gt: Mapping[str, np.ndarray] | None = None, progress: bool = True) -> None:
        self.train = [r for r in dataset.split("train") if r.label == 0]
        if not self.train:
            raise VadError("no normal training videos (split 'train', label 0)")
        self.val = dataset.split("val")
        self.dataset, self.config, self.val_gt, self.progress = dataset, config, val_gt, progress
        self.levels = dataset.levels()
        self.device = resolve_device(config.device)
        self.model = AnomalyModel(one_class_config(dataset, config)).eval()
        self.notes: list[str] = []

    def fit(self) -> FitNormalResult:
        """Build the memories, then fit the score scale and the thresholds on the validation videos."""
        started = time.perf_counter()
        stats = self.build_memory()
        stats["memory_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        thresholds = self.fit_scale(stats)
        stats["calibration_seconds"] = round(time.perf_counter() - started, 3)
        return FitNormalResult(self.model, thresholds, stats, self.dataset.notes + self.notes)

    @torch.no_grad()
    def build_memory(self, videos: Iterable[VideoFeatures] | None = None, total: int | None = None) -> dict:
        """Stream normal videos (default: the train split's) through per-level reservoirs, standardise, reduce
        (see the module doc). ``videos`` may be any iterable, e.g. a generator over hours of footage."""
        model, mem = self.model, self.model.config.memory
        levels = [lvl for lvl in FEATURE_LEVELS if model.config.uses(lvl)]
        pools: dict[str, Reservoir] = {}
        count = 0
        if videos is None:
            videos, total = (r.features for r in self.train), len(self.train)
        for features in tqdm(videos, total=total, desc="fit-normal: memory", unit="video", disable=not self.progress):
            count += 1
            batch = collate([features], self.levels, None)
            batch = batch.centered() if model.config.center else batch
            for lvl in levels:
                items = level_items(batch, lvl)
                if lvl not in pools:
                    pools[lvl] = Reservoir(mem.pool, items.shape[-1], mem.seed + FEATURE_LEVELS.index(lvl))
                pools[lvl].add(items.reshape(-1, items.shape[-1]))
        stats: dict = {"videos": count, "seen": {}, "kept": {}}
        for lvl, pool in pools.items():
            sample = pool.sample()
            std = sample.std(0).clamp_min(1e-6) if sample.shape[0] > 1 else torch.ones(sample.shape[1])
            if lvl == "motion":
                model.motion_scale.copy_(std)
            else:
                model.input_scale[VISUAL_LEVELS.index(lvl)] = std
            memory = reduce_memory(sample / std, mem.size, mem.reduce, mem.projection_dim, mem.seed)
            model.head.set_memory(lvl, memory)
            stats["seen"][lvl], stats["kept"][lvl] = pool.seen, int(memory.shape[0])
        return stats

    @torch.no_grad()
    def fit_scale(self, stats: dict) -> dict:
        """Score scale from the normal validation videos, then the stored thresholds (see the module doc)."""
        head = self.model.to(self.device).head
        scale_videos = [r for r in self.val if r.label == 0]
        if not scale_videos:
            scale_videos = self.train[: max(1, len(self.train) // 5)]
            self.notes.append("no normal validation videos: the score scale comes from training videos (biased "
                              "low: their vectors may be in the memory) and no false-alarm threshold is stored")
        records = {r.name: r for r in [*self.val, *scale_videos]}
        parts = {name: self._parts(r) for name, r in tqdm(records.items(), desc="fit-normal: calibrate",
                                                            unit="video", disable=not self.progress)}
        normal = [parts[r.name] for r in scale_videos]
        for i, lvl_id in enumerate(normal[0].level_ids):
            head.level_scale[lvl_id] = _median([p.levels[i] for p in normal])
        if normal[0].neighborhood is not None:
            head.neighborhood_scale.fill_(_median([p.neighborhood for p in normal]))
        raw = torch.cat([head.combine(p)[0][p.node_mask] for p in normal]).float()
        q50, q99 = torch.quantile(raw, 0.5), torch.quantile(raw, 0.99)
        head.score_location.fill_(float(q99))
        head.score_spread.fill_(max(float(q99 - q50), 1e-6) / LOGIT_GAIN)
        stats["scale"] = {"level_scale": head.level_scale.tolist(), "neighborhood_scale": float(
            head.neighborhood_scale), "q50": float(q50), "q99": float(q99), "videos": len(scale_videos)}
        if not self.val:
            return {}
        frames = {r.name: self._frames(r, parts[r.name]) for r in self.val}
        thresholds, notes = thresholds_from_scores(frames, [r.name for r in self.val if r.label == 0],
                                                   self.val_gt, self.config.calibration)
        self.notes += notes
        return thresholds

    def _parts(self, record: VideoRecord) -> OneClassParts:
        model = self.model
        return model.head.parts(model.prepare(collate([record.features], self.levels, None).to(self.device)))

    def _frames(self, record: VideoRecord, parts: OneClassParts) -> np.ndarray:
        head = self.model.head
        raw = head.combine(parts)[0][0]
        scores = torch.sigmoid((raw - head.score_location) / head.score_spread).cpu().numpy()
        f = record.features
        return expand_to_frames(scores, f.num_video_frames, f.meta.snippet_len)

    def save(self, out_dir: str | os.PathLike, result: FitNormalResult) -> None:
        """Checkpoint: memories and scales in ``model.safetensors``; config, thresholds, stats in ``config.json``."""
        save_checkpoint(out_dir, result.model.cpu(), self.dataset, self.levels, extra={
            "fit_normal_config": asdict(self.config), "calibration": asdict(self.config.calibration),
            "thresholds": result.thresholds, "fit_stats": result.stats, "notes": result.notes})


def _median(chunks: Sequence[torch.Tensor]) -> float:
    values = torch.cat([c.reshape(-1) for c in chunks]).float()
    values = values[values > 0] if (values > 0).any() else values
    return max(float(values.median()), 1e-6)


def fit_normal(dataset: Dataset, config: FitNormalConfig = FitNormalConfig(),
               val_gt: Mapping[str, np.ndarray] | None = None, progress: bool = False) -> AnomalyModel:
    """A one-class :class:`AnomalyModel` fitted on ``dataset``'s normal train videos, scaled on its val split."""
    return NormalFitter(dataset, config, val_gt, progress).fit().model


def fit_normal_from_paths(features: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "auto",
                          config: FitNormalConfig = FitNormalConfig(), progress: bool = True) -> FitNormalResult:
    """The library call behind ``vad fit-normal``: every video of ``features`` is normal; fit, calibrate, save."""
    dataset = normal_dataset(features, fmt, config.val_fraction, config.seed)
    if len(dataset.records) < 2:
        raise VadError(f"{features}: one-class fitting needs at least two normal videos (one held out)")
    fitter = NormalFitter(dataset, config, None, progress)
    result = fitter.fit()
    fitter.save(out_dir, result)
    return result


def with_graph_terms(config: FitNormalConfig, enabled: bool) -> FitNormalConfig:
    """``config`` with the graph terms switched on or off (the plain k-NN ablation)."""
    return replace(config, graph_terms=replace(config.graph_terms, enabled=enabled))
