"""Weakly supervised training (video-level labels only) with model selection on the validation split.

Protocol (UCF-Crime / XD-Violence, DESIGN.md §4): every training video is resampled to a fixed number of
snippets by average pooling; a batch pairs normal and abnormal videos; a video's score is the mean of its top-k
snippet scores (k = N // 16 + 1) and is trained with binary cross-entropy against the video label, plus RTFM's
smoothness and sparsity terms on abnormal videos. The checkpoint kept is the one with the best validation
metric (frame AUC when the validation videos have frame ground truth, else video-level AUC); test data is never
looked at. Early stopping after ``patience`` epochs without improvement.
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

from vad.data.batch import collate
from vad.data.dataset import Dataset, VideoRecord, load_dataset
from vad.engine.inference import score_records
from vad.engine.metrics import evaluate
from vad.errors import VadError
from vad.features.backbone import resolve_device
from vad.models.anomaly import AnomalyModel
from vad.models.checkpoint import save_checkpoint
from vad.models.config import ModelConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 16  # videos per step: half normal, half abnormal
    num_snippets: int = 64  # longer training videos are average-pooled to this many snippets, shorter padded
    lr: float = 5e-4  # AdamW learning rate
    weight_decay: float = 1e-3  # AdamW weight decay
    smooth_weight: float = 8e-4  # RTFM temporal smoothness on abnormal videos
    sparsity_weight: float = 8e-4  # RTFM sparsity on abnormal videos
    patience: int = 6  # epochs without validation improvement before stopping
    seed: int = 0  # everything random (init, sampling, dropout) derives from it
    device: str = "auto"  # auto | cpu | cuda
    grad_clip: float = 5.0  # max gradient norm


@dataclass
class TrainResult:
    """What a training run produced."""

    model: AnomalyModel  # the selected (best-validation) weights
    best_epoch: int
    best_val: float  # selection metric of the best epoch
    val_metric: str  # "frame_auc" or "video_auc"
    history: list[dict] = field(default_factory=list)  # one row per epoch: loss, val, seconds
    seconds_per_epoch: float = 0.0


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


def paired_batches(records: Sequence[VideoRecord], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of index batches, each half normal, half abnormal (the smaller class is cycled)."""
    normal = [i for i, r in enumerate(records) if r.label == 0]
    abnormal = [i for i, r in enumerate(records) if r.label == 1]
    if not normal or not abnormal:
        raise VadError("training needs both normal and abnormal videos in the train split")
    half = max(1, batch_size // 2)
    steps = math.ceil(max(len(normal), len(abnormal)) / half)
    def stream(ids: list[int]) -> np.ndarray:
        reps = math.ceil(steps * half / len(ids))
        return np.concatenate([rng.permutation(ids) for _ in range(reps)])[: steps * half]
    n_ids, a_ids = stream(normal), stream(abnormal)
    return [list(n_ids[s * half:(s + 1) * half]) + list(a_ids[s * half:(s + 1) * half]) for s in range(steps)]


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


def train_model(dataset: Dataset, model_config: ModelConfig, config: TrainConfig,
                out_dir: str | os.PathLike | None = None, val_gt: Mapping[str, np.ndarray] | None = None,
                progress: bool = True) -> TrainResult:
    """Train on ``dataset``'s train split, select on its val split, write the checkpoint to ``out_dir``."""
    train, val = dataset.split("train"), dataset.split("val")
    if not train:
        raise VadError("no training videos (split 'train' is empty)")
    if not val:
        raise VadError("no validation videos: model selection needs a val split (pass --val-fraction > 0)")
    _seed_everything(config.seed)
    device = resolve_device(config.device)
    levels = dataset.levels()
    text = None if dataset.text is None else dataset.text.embeddings
    available = levels + (("text",) if text is not None else ())
    missing = [lvl for lvl in model_config.levels if lvl not in available]
    if missing:  # e.g. peer formats: clip level only, no prompt embeddings
        model_config = replace(model_config, levels=tuple(lvl for lvl in model_config.levels if lvl in available))
        dataset.notes.append(f"features have no {', '.join(missing)} level(s): those levels are off")
    model = AnomalyModel(model_config)
    model.fit_input_scale([r.features for r in train])
    model.to(device)
    rng = np.random.default_rng(config.seed)
    # materialise lazy layers with one batch before the optimiser sees the parameters
    warm = collate([train[0].features], levels, text, config.num_snippets).to(device)
    model(warm)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best = (-math.inf, -1, None)
    history: list[dict] = []
    metric_name = ""
    epoch_bar = tqdm(range(config.epochs), desc="train", unit="epoch", disable=not progress)
    stale = 0
    for epoch in epoch_bar:
        started = time.perf_counter()
        model.train()
        losses = []
        for idx in paired_batches(train, config.batch_size, rng):
            batch = collate([train[i].features for i in idx], levels, text, config.num_snippets,
                            pad_short=True).to(device)
            labels = torch.tensor([train[i].label for i in idx], device=device)
            loss = mil_loss(model(batch).scores, labels, config, batch.node_mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - started
        val_score, metric_name = validation_score(model, val, text, levels, val_gt, device)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), metric_name: val_score,
                        "seconds": round(seconds, 3)})
        log.info("epoch %d loss %.4f val %s %.4f", epoch, np.mean(losses), metric_name, val_score)
        epoch_bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{val_score:.3f}")
        if val_score > best[0]:
            best = (val_score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
            stale = 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best[2])
    model.eval()
    result = TrainResult(model, best[1], best[0], metric_name, history,
                         float(np.mean([h["seconds"] for h in history])))
    if out_dir is not None:
        save_checkpoint(out_dir, model, dataset, levels, extra={
            "train_config": asdict(config), "best_epoch": result.best_epoch, "best_val": result.best_val,
            "val_metric": metric_name, "history": history, "notes": dataset.notes})
    return result


def train_from_paths(features: str | os.PathLike, out_dir: str | os.PathLike, labels: str | os.PathLike | None = None,
                     fmt: str = "auto", model_config: ModelConfig = ModelConfig(),
                     config: TrainConfig = TrainConfig(), val_fraction: float = 0.15,
                     progress: bool = True) -> TrainResult:
    """The library call behind ``vad train``: load features + labels, train, select on val, save.

    ``labels`` may be a labels CSV or a ``vad synth`` directory; with the latter, validation uses its frame
    ground truth (frame AUC), otherwise video-level AUC.
    """
    from vad.data.groundtruth import read_synth_gt

    dataset = load_dataset(features, labels, fmt, val_fraction, config.seed)
    val_gt = None
    if labels is not None and Path(labels).is_dir() and (Path(labels) / "benchmark.json").exists():
        val_gt = read_synth_gt(labels, "val").frames
    model_config = replace(model_config, feature_dim=dataset.dim)
    return train_model(dataset, model_config, config, out_dir, val_gt, progress)
