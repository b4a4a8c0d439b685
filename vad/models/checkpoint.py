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
from vad.io import atomic_path, clean_stale_parts, read_json_object, write_json_atomic
from vad.models.anomaly import AnomalyModel
from vad.models.config import ModelConfig
from vad.names import ALL_LEVELS

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
    clean_stale_parts(out)  # temp files of a training run that was killed while writing here
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if dataset.text is not None:
        tensors[TEXT_KEY] = torch.from_numpy(np.ascontiguousarray(dataset.text.embeddings))
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(out / CONFIG, {
        "format": "vadgraph-model-1", "model": model.config.to_dict(), "levels": list(levels),
        "prompts": dataset.text.prompts if dataset.text is not None else [],
        "backbone": _portable(backbone_of(dataset), out), "num_parameters": model.num_parameters(), **(extra or {}),
    })
    return out


def read_model_info(model_dir: str | os.PathLike) -> dict:
    """The ``config.json`` of a model directory (no weights are read)."""
    path = Path(model_dir) / CONFIG
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable model config ({exc})") from exc


def _portable(backbone: dict, out: Path) -> dict:
    """A backbone weights file recorded relative to the model directory (``./`` or ``../`` first), so a model
    copied together with its weights still finds them; the absolute path is kept as a fallback."""
    weights = backbone.get("weights", "")
    if weights and os.path.isabs(weights) and os.path.isfile(weights):
        rel = os.path.relpath(weights, out.resolve())
        backbone = {**backbone, "weights": rel if rel.startswith("..") else f".{os.sep}{rel}", "weights_abs": weights}
    return backbone


def _resolve_weights(backbone: dict, root: Path) -> dict:
    """``backbone`` with a relative weights path made absolute against ``root`` (else the recorded absolute one)."""
    weights = backbone.get("weights", "")
    if isinstance(weights, str) and weights.startswith(("./", "../", f".{os.sep}", f"..{os.sep}")):
        here = (root / weights).resolve()
        fallback = backbone.get("weights_abs", "")
        chosen = here if here.is_file() or not (isinstance(fallback, str) and os.path.isfile(fallback)) else fallback
        return {**backbone, "weights": str(chosen), "weights_recorded": weights}
    return backbone


def load_checkpoint(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Read a checkpoint directory written by :func:`save_checkpoint` (clear errors when it is not one)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root = Path(model_dir)
    for name in (CONFIG, WEIGHTS):
        if not (root / name).is_file():
            raise WeightsError(f"{root}: not a model directory ({name} missing; train one with `vad train`)")
    info, config = _read_config(root / CONFIG)
    try:
        tensors = load_file(str(root / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{root / WEIGHTS}: corrupt or not a safetensors file ({_first(exc)})") from exc
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise WeightsError(f"{root / WEIGHTS}: tensor {bad!r} holds NaN or Inf values (a diverged or damaged model; "
                           f"retrain it)")
    text = tensors.pop(TEXT_KEY, None)
    _check_text(root, config, text, info["prompts"])
    try:
        model = AnomalyModel(config)
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError, IndexError, KeyError) as exc:
        raise WeightsError(f"{root / CONFIG}: field 'model' does not describe a buildable model ({_first(exc)})"
                           ) from exc
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise WeightsError(f"{root / WEIGHTS}: weights do not fit the model in config.json ({_first(exc)})") from exc
    model.to(device).eval()
    return LoadedModel(model, tuple(info["levels"]), None if text is None else text.numpy(), list(info["prompts"]),
                       _resolve_weights(info["backbone"], root), info)


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _read_config(path: Path) -> tuple[dict, ModelConfig]:
    """``config.json`` checked field by field: a bad one is a ``WeightsError`` naming the file and the field."""
    info = read_json_object(path, "model config", WeightsError)
    if "model" not in info:
        raise WeightsError(f"{path}: field 'model' missing (not a vadgraph model config)")
    try:
        config = ModelConfig.from_dict(info["model"])
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f"{path}: unreadable model config, field 'model': {_first(exc)}") from exc
    info.setdefault("levels", ["clip"])
    info.setdefault("prompts", [])
    info.setdefault("backbone", {})
    for key, ok in (("levels", lambda v: isinstance(v, list) and v and all(lvl in ALL_LEVELS for lvl in v)),
                    ("prompts", lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v)),
                    ("backbone", lambda v: isinstance(v, dict))):
        if not ok(info[key]):
            raise WeightsError(f"{path}: field {key!r} is malformed ({str(info[key])[:80]!r})")
    return info, config


def _check_text(root: Path, config: ModelConfig, text: torch.Tensor | None, prompts: list[str]) -> None:
    """The prompt embeddings the model needs are there, finite, and as many and as wide as config.json says."""
    if text is None:
        if config.uses("text"):
            raise WeightsError(f"{root / WEIGHTS}: tensor {TEXT_KEY!r} missing (config.json field model.num_prompts "
                               f"is {config.num_prompts}, the model reads prompt embeddings)")
        return
    if text.dim() != 2 or text.shape[1] != config.feature_dim:
        raise WeightsError(f"{root / WEIGHTS}: tensor {TEXT_KEY!r} has shape {tuple(text.shape)}, config.json field "
                           f"model.feature_dim needs (K, {config.feature_dim})")
    if config.uses("text") and text.shape[0] != config.num_prompts:
        raise WeightsError(f"{root / WEIGHTS}: {text.shape[0]} prompt embeddings, config.json field "
                           f"model.num_prompts says {config.num_prompts}")
    if len(prompts) != text.shape[0]:
        raise WeightsError(f"{root / CONFIG}: field 'prompts' lists {len(prompts)} prompts for {text.shape[0]} "
                           f"prompt embeddings in {WEIGHTS}")
