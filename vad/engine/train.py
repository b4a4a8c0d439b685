"""Weakly supervised training (video-level labels only) with model selection on the validation split.

Protocol (UCF-Crime / XD-Violence, docs/design.md §6): every training video is resampled to a fixed number of
snippets by average pooling; a batch pairs normal and abnormal videos; a video's score is the mean of its top-k
snippet scores (k = N // 16 + 1) and is trained with binary cross-entropy against the video label, plus RTFM's
smoothness and sparsity terms on abnormal videos. The checkpoint kept is the one with the best validation
metric (frame AUC when the validation videos have frame ground truth, else video-level AUC); test data is never
looked at. Early stopping after ``patience`` epochs without improvement.

Under ``torchrun`` (:mod:`vad.engine.distributed`) the model is wrapped in DistributedDataParallel: every rank
draws the same epoch batches from the same seeded generator and trains on its own disjoint share of each global
batch (:func:`rank_share`), so the global batch is the single-process one and DDP's gradient average equals the
single-process mean loss. Rank 0 validates, decides early stopping (broadcast to all ranks) and writes the
checkpoint; the EMA weights are updated identically everywhere. Dropout is seeded with ``seed + rank``.
"""
from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fusion import degree_variance_loss
from vad.data.batch import collate
from vad.data.dataset import Dataset, VideoRecord, load_dataset
from vad.engine import distributed
from vad.engine.calibration import CalibrationConfig, calibrate
from vad.engine.config import TrainConfig
from vad.engine.inference import score_records
from vad.engine.metrics import evaluate
from vad.errors import VadError
from vad.features.backbone import resolve_device
from vad.models.anomaly import AnomalyModel
from vad.models.checkpoint import save_checkpoint
from vad.models.config import ModelConfig

log = logging.getLogger(__name__)
FITTED_ARCHS = {"oneclass": "fit it on normal videos with `vad fit-normal`",
                "zeroshot": "it needs no training: `vad score` scores zero-shot (`zero_shot`)"}


@dataclass
class TrainResult:
    """What a training run produced."""

    model: AnomalyModel  # the selected (best-validation) weights
    best_epoch: int
    best_val: float  # selection metric of the best epoch
    val_metric: str  # "frame_auc" or "video_auc"
    history: list[dict] = field(default_factory=list)  # one row per epoch: loss, val, seconds
    seconds_per_epoch: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)  # feature file -> why that video was left out
    notes: list[str] = field(default_factory=list)  # what the data loading inferred or left out


def mil_loss(scores: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
             node_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Top-k MIL BCE + smoothness + sparsity.

    ``scores (B, N)`` in [0, 1], ``labels (B,)``, ``node_mask (B, N)`` (None: no padding). A video's score is
    the mean of its top-k real snippets, k = n // 16 + 1 for a video of n real snippets.
    """
    n = scores.shape[1]
    mask = torch.ones_like(scores, dtype=torch.bool) if node_mask is None else node_mask
    lengths = mask.sum(1)
    k = (lengths // 16 + 1).clamp(max=lengths.clamp(min=1))  # shape = [B]
    ranked = scores.masked_fill(~mask, -1.0).sort(dim=1, descending=True).values
    take = torch.arange(n, device=scores.device)[None, :] < k[:, None]
    video = (ranked.clamp(min=0) * take).sum(1) / k
    loss = torch.nn.functional.binary_cross_entropy(video.clamp(1e-6, 1 - 1e-6), labels.float())
    abnormal = labels.bool()
    if abnormal.any():
        s, m = scores[abnormal] * mask[abnormal], mask[abnormal]
        pair = (m[:, 1:] & m[:, :-1]).float()
        loss = loss + config.smooth_weight * ((s[:, 1:] - s[:, :-1]).pow(2) * pair).sum(1).mean()
        loss = loss + config.sparsity_weight * s.sum(1).mean()
    return loss


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def steps_per_epoch(records: Sequence[VideoRecord], batch_size: int) -> int:
    """Batches in one epoch of :func:`paired_batches`: the larger class once through, half a batch at a time."""
    normal = sum(r.label == 0 for r in records)
    abnormal = len(records) - normal
    if not normal or not abnormal:
        raise VadError("training needs both normal and abnormal videos in the train split")
    return math.ceil(max(normal, abnormal) / max(1, batch_size // 2))


def paired_batches(records: Sequence[VideoRecord], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of index batches, each half normal, half abnormal (the smaller class is cycled)."""
    normal = [i for i, r in enumerate(records) if r.label == 0]
    abnormal = [i for i, r in enumerate(records) if r.label == 1]
    steps = steps_per_epoch(records, batch_size)
    half = max(1, batch_size // 2)
    def stream(ids: list[int]) -> np.ndarray:
        reps = math.ceil(steps * half / len(ids))
        return np.concatenate([rng.permutation(ids) for _ in range(reps)])[: steps * half]
    n_ids, a_ids = stream(normal), stream(abnormal)
    return [list(n_ids[s * half:(s + 1) * half]) + list(a_ids[s * half:(s + 1) * half]) for s in range(steps)]


def rank_share(batch: Sequence[int], rank: int, world: int) -> list[int]:
    """This rank's disjoint share of a global :func:`paired_batches` batch: every world-th normal, abnormal."""
    half = len(batch) // 2
    return list(batch[:half][rank::world]) + list(batch[half:][rank::world])


def validation_score(model: AnomalyModel, records: Sequence[VideoRecord], text: np.ndarray | None,
                     levels: Sequence[str], gt: Mapping[str, np.ndarray] | None, device: torch.device
                     ) -> tuple[float, str]:
    """Selection metric on validation videos: frame AUC with ground truth, else video-level AUC of max score."""
    from sklearn.metrics import roc_auc_score

    scored = score_records(model, records, text, levels, device)
    if gt is not None and all(r.name in gt for r in records):
        report = evaluate({n: s.frames for n, s in scored.items()}, {r.name: gt[r.name] for r in records})
        return float(report.auc), "frame_auc"
    y = [r.label for r in records]
    s = [scored[r.name].snippets.max() for r in records]
    return float(roc_auc_score(y, s)) if len(set(y)) == 2 else float("nan"), "video_auc"


def complete_model_config(model_config: ModelConfig, dataset: Dataset) -> ModelConfig:
    """Fill the widths the features decide (D, M, K) and drop levels the features lack (with a note)."""
    levels = dataset.levels()
    text = dataset.text
    available = levels + (("text",) if text is not None else ())
    missing = [lvl for lvl in model_config.levels if lvl not in available]
    if missing:  # e.g. peer formats: clip level only, no prompt embeddings; old features: no motion
        dataset.notes.append(f"features have no {', '.join(missing)} level(s): those levels are off")
    first = next(iter(dataset.records.values())).features
    return replace(model_config, levels=tuple(lvl for lvl in model_config.levels if lvl in available),
                   feature_dim=dataset.dim, motion_dim=0 if first.motion is None else int(first.motion.shape[1]),
                   num_prompts=0 if text is None else len(text.embeddings))


class Trainer:
    """Weakly supervised training of one :class:`AnomalyModel`: :meth:`fit`, :meth:`validate`, :meth:`save`.

    The weights that are validated and kept are an exponential moving average of the trained ones
    (``ema_decay``), so the selected epoch is not a lottery of one noisy step; selection is on the val split.
    """

    def __init__(self, dataset: Dataset, model_config: ModelConfig, config: TrainConfig,
                 val_gt: Mapping[str, np.ndarray] | None = None, progress: bool = True,
                 calibration: CalibrationConfig = CalibrationConfig()) -> None:
        if model_config.arch in FITTED_ARCHS:
            raise VadError(f"arch {model_config.arch!r} is not trained with labels: "
                           f"{FITTED_ARCHS[model_config.arch]}")
        self.train_set, self.val_set = dataset.split("train"), dataset.split("val")
        if not self.train_set:
            raise VadError("no training videos (split 'train' is empty)")
        if not self.val_set:
            raise VadError("no validation videos: model selection needs a val split (`val_fraction` > 0)")
        if val_gt is None and len({r.label for r in self.val_set}) < 2:
            raise VadError(f"the val split holds only {'abnormal' if self.val_set[0].label else 'normal'} videos: "
                           f"model selection needs both normal and abnormal videos there (or frame ground truth)")
        half = max(1, config.batch_size // 2)
        _seed_everything(config.seed)
        self.dataset, self.config, self.val_gt = dataset, config, val_gt
        self.calibration = calibration
        self.device = resolve_device(config.device)
        self.dist = distributed.setup(self.device)
        if self.dist is not None:
            self.device = self.dist.device
            if half < self.dist.world:
                self.close()
                raise VadError(f"batch_size {config.batch_size} is too small for {self.dist.world} processes: "
                               f"each needs at least one normal and one abnormal video per step")
            if half % self.dist.world and self.dist.rank == 0:
                log.warning("batch_size/2 = %d is not a multiple of %d processes: unequal shares, so the averaged "
                            "gradient only approximates the single-process one", half, self.dist.world)
        self.progress = progress and distributed.is_main()
        self.levels = dataset.levels()
        self.text = None if dataset.text is None else dataset.text.embeddings
        self.model = AnomalyModel(complete_model_config(model_config, dataset))
        self.model.fit_input_scale([r.features for r in self.train_set])
        self.model.to(self.device)
        self.average = torch.optim.swa_utils.AveragedModel(
            self.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay),
            use_buffers=True)
        self.net: torch.nn.Module = self.model
        if self.dist is not None:
            torch.manual_seed(config.seed + self.dist.rank)  # dropout differs per rank, reproducibly
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=config.lr, weight_decay=config.weight_decay)
        steps = config.epochs * steps_per_epoch(self.train_set, config.batch_size)
        self.scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(1, steps))
                          if config.schedule == "cosine" else None)
        self.rng = np.random.default_rng(config.seed)
        self.history: list[dict] = []

    def _param_groups(self) -> list[dict]:
        """LEGO's fusion matrices get ``fusion_lr_scale`` × the learning rate and no weight decay."""
        fusion = [p for n, p in self.model.named_parameters() if n.endswith("fusion.weight") and p.requires_grad]
        ids = {id(p) for p in fusion}
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest}]
        if fusion:
            groups.append({"params": fusion, "lr": self.config.lr * self.config.fusion_lr_scale, "weight_decay": 0.0})
        return groups

    def train_epoch(self) -> float:
        """One pass over paired normal/abnormal batches; the mean loss."""
        cfg, model = self.config, self.net
        model.train()
        losses = []
        for idx in paired_batches(self.train_set, cfg.batch_size, self.rng):
            if self.dist is not None:
                idx = rank_share(idx, self.dist.rank, self.dist.world)
            batch = collate([self.train_set[i].features for i in idx], self.levels, self.text, cfg.num_snippets,
                            pad_short=True).to(self.device)
            labels = torch.tensor([self.train_set[i].label for i in idx], device=self.device)
            out = model(batch)
            if "member_logits" in out.extras:  # an ensemble: every member learns on its own, as if alone
                loss = torch.stack([mil_loss(torch.sigmoid(m), labels, cfg, batch.node_mask)
                                    for m in out.extras["member_logits"]]).mean()
            else:
                loss = mil_loss(out.scores, labels, cfg, batch.node_mask)
            if cfg.degree_weight and "degrees" in out.extras:  # every member's graph, as if each were alone
                degrees = out.extras.get("member_degrees", out.extras["degrees"][None])  # (members, B, N)
                loss = loss + cfg.degree_weight * torch.stack(
                    [degree_variance_loss(d, labels, batch.node_mask) for d in degrees]).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.average.update_parameters(self.model)
            losses.append(loss.item())
        return distributed.mean_over_ranks(float(np.mean(losses)), self.device)

    def validate(self) -> tuple[float, str]:
        """Selection metric of the averaged weights on the val split (see :func:`validation_score`)."""
        return validation_score(self.average.module, self.val_set, self.text, self.levels, self.val_gt, self.device)

    def fit(self) -> TrainResult:
        """Train up to ``epochs`` epochs with early stopping; the best validated averaged weights are kept."""
        best = (-math.inf, -1, None)
        metric_name, stale = "", 0
        bar = tqdm(range(self.config.epochs), desc="train", unit="epoch", disable=not self.progress)
        for epoch in bar:
            started = time.perf_counter()
            loss = self.train_epoch()
            seconds = time.perf_counter() - started
            val, metric_name = self._validate_and_share()
            self.history.append({"epoch": epoch + 1, "loss": loss, metric_name: val, "seconds": round(seconds, 3)})
            log.info("epoch %d loss %.4f val %s %.4f", epoch + 1, loss, metric_name, val)
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{val:.3f}")
            if best[2] is None or val > best[0]:  # a NaN metric keeps the first epoch rather than none
                state = {k: v.detach().clone() for k, v in self.average.module.state_dict().items()}
                best, stale = (val, epoch + 1, state), 0
            else:
                stale += 1
            if self._stop(stale >= self.config.patience):
                break
        self.model.load_state_dict(best[2])
        self.model.eval()
        return TrainResult(self.model, best[1], best[0], metric_name, self.history,
                           float(np.mean([h["seconds"] for h in self.history])))

    def _validate_and_share(self) -> tuple[float, str]:
        """:meth:`validate` on rank 0, its result broadcast to every rank (plain :meth:`validate` without DDP)."""
        if self.dist is None:
            return self.validate()
        val, metric_name = self.validate() if self.dist.rank == 0 else (math.nan, "")
        val, frame = distributed.broadcast_floats([val, float(metric_name == "frame_auc")], self.device)
        return val, "frame_auc" if frame else "video_auc"

    def _stop(self, stop: bool) -> bool:
        """Rank 0's early-stopping decision, on every rank."""
        return bool(distributed.broadcast_floats([float(stop)], self.device)[0])

    def close(self) -> None:
        """Leave the process group if this trainer created it (no-op without DDP)."""
        distributed.cleanup(self.dist)
        self.dist = None

    def save(self, out_dir: str | os.PathLike, result: TrainResult) -> None:
        """Checkpoint of the selected weights, with the training config, the history and the thresholds
        calibrated on the val split (:mod:`vad.engine.calibration`) beside them."""
        thresholds, notes = calibrate(result.model, self.val_set, self.text, self.levels, self.val_gt,
                                      self.calibration, self.device)
        save_checkpoint(out_dir, result.model, self.dataset, self.levels, extra={
            "train_config": asdict(self.config), "calibration": asdict(self.calibration), "thresholds": thresholds,
            "best_epoch": result.best_epoch, "best_val": result.best_val, "val_metric": result.val_metric,
            "history": result.history, "notes": self.dataset.notes + notes})


def train_model(dataset: Dataset, model_config: ModelConfig, config: TrainConfig,
                out_dir: str | os.PathLike | None = None, val_gt: Mapping[str, np.ndarray] | None = None,
                progress: bool = True, calibration: CalibrationConfig = CalibrationConfig()) -> TrainResult:
    """Train on ``dataset``'s train split, select on its val split, write the checkpoint (with thresholds
    calibrated on the val split) to ``out_dir``."""
    trainer = Trainer(dataset, model_config, config, val_gt, progress, calibration)
    try:
        result = trainer.fit()
        if out_dir is not None and distributed.is_main():
            trainer.save(out_dir, result)
        distributed.barrier()  # other ranks return once the checkpoint exists
    finally:
        trainer.close()
    return result


def train_from_paths(features: str | os.PathLike, out_dir: str | os.PathLike, labels: str | os.PathLike | None = None,
                     fmt: str = "auto", model_config: ModelConfig = ModelConfig(),
                     config: TrainConfig = TrainConfig(), val_fraction: float = 0.15,
                     progress: bool = True, calibration: CalibrationConfig = CalibrationConfig()) -> TrainResult:
    """The library call behind ``vad train``: load features + labels, train, select on val, save.

    ``labels`` may be a labels CSV or a ``vad synth`` directory; with the latter, validation uses its frame
    ground truth (frame AUC), otherwise video-level AUC.
    """
    from vad.data.groundtruth import read_synth_gt

    dataset = load_dataset(features, labels, fmt, val_fraction, config.seed)
    val_gt = None
    if labels is not None and Path(labels).is_dir() and (Path(labels) / "benchmark.json").exists():
        val_gt = read_synth_gt(labels, "val").frames
    result = train_model(dataset, model_config, config, out_dir, val_gt, progress, calibration)
    result.failed.update(dataset.failed)
    result.notes.extend(dataset.notes)
    return result
