"""Model checkpoints: ``model.safetensors`` (weights + prompt embeddings) and ``config.json`` (everything else).

Loading never unpickles: safetensors holds tensors only, and the JSON holds the model config, the feature
levels, the prompts and the backbone that made the features (so ``vad score`` extracts features the same way).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vad.data.dataset import Dataset
from vad.errors import WeightsError
from vad.io import atomic_path, write_json_atomic
from vad.models.anomaly import AnomalyModel
from vad.models.config import ModelConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TEXT_KEY = "__text_embeddings__"


@dataclass
class LoadedModel:
    """A model read back from a checkpoint directory, with what it needs to score new videos."""

    model: AnomalyModel
    levels: tuple[str, ...]  # visual levels the model reads
    text: np.ndarray | None  # (K, D) prompt embeddings
    prompts: list[str]
    backbone: dict  # name, weights, snippet_len, frames_per_snippet, patch_grid
    info: dict  # the whole config.json


def backbone_of(dataset: Dataset) -> dict:
    """How the dataset's features were made (first video's metadata; ``vad extract`` keeps them uniform)."""
    feats = next(iter(dataset.records.values())).features
    grid = int(round(math.sqrt(feats.patch.shape[1]))) if feats.patch is not None else 0
    return {"name": feats.meta.backbone, "weights": feats.meta.weights, "snippet_len": feats.meta.snippet_len,
            "frames_per_snippet": int(feats.frame.shape[1]) if feats.frame is not None else 1,
            "patch_grid": grid or 2, "source_format": feats.meta.source_format}


def save_checkpoint(out_dir: str | os.PathLike, model: AnomalyModel, dataset: Dataset, levels: tuple[str, ...],
                    extra: dict | None = None) -> Path:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.json`` atomically; returns ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if dataset.text is not None:
        tensors[TEXT_KEY] = torch.from_numpy(np.ascontiguousarray(dataset.text.embeddings))
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(out / CONFIG, {
        "format": "vadgraph-model-1", "model": model.config.to_dict(), "levels": list(levels),
        "prompts": dataset.text.prompts if dataset.text is not None else [],
        "backbone": backbone_of(dataset), "num_parameters": model.num_parameters(), **(extra or {}),
    })
    return out


def read_model_info(model_dir: str | os.PathLike) -> dict:
    """The ``config.json`` of a model directory (no weights are read)."""
    path = Path(model_dir) / CONFIG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable model config ({exc})") from exc


def load_checkpoint(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Read a checkpoint directory written by :func:`save_checkpoint` (clear errors when it is not one)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root = Path(model_dir)
    for name in (CONFIG, WEIGHTS):
        if not (root / name).is_file():
            raise WeightsError(f"{root}: not a model directory ({name} missing; train one with `vad train`)")
    try:
        info = json.loads((root / CONFIG).read_text(encoding="utf-8"))
        config = ModelConfig.from_dict(info["model"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{root / CONFIG}: unreadable model config ({exc})") from exc
    try:
        tensors = load_file(str(root / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{root / WEIGHTS}: corrupt or not a safetensors file ({exc})") from exc
    text = tensors.pop(TEXT_KEY, None)
    model = AnomalyModel(config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{root / WEIGHTS}: weights do not fit the model in config.json ({first})") from exc
    model.to(device).eval()
    return LoadedModel(model, tuple(info.get("levels", ["clip"])), None if text is None else text.numpy(),
                       list(info.get("prompts", [])), info.get("backbone", {}), info)
