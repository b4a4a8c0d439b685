"""The ``vad`` command lines equivalent to what a benchmark run did, so that anyone can repeat a step by hand.

Options are written only where the run's config differs from the verb's default (the CLI's defaults are the
configs' defaults), using the CLI's spelling: the field's dotted path, ``_`` as ``-``.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _value(value: Any) -> str:
    """A config value as the CLI parses it back (JSON for lists, ``true`` / ``null`` for bools and None)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (tuple, list, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def changed_options(config: Any, default: Any, prefix: str = "") -> list[str]:
    """``["--key", "value", ...]`` for every leaf field of dataclass ``config`` that differs from ``default``
    (nested configs are walked; ``prefix`` is the config's key on the command line, "" for top-level fields)."""
    out: list[str] = []
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value, base = getattr(config, f.name), getattr(default, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value) and type(value) is type(base):
            out += changed_options(value, base, key)
        elif value != base:
            out += ["--" + key.replace("_", "-"), _value(value)]
    return out


def command_line(words: Sequence[str | Path]) -> str:
    """Words joined into one shell line, each quoted where the shell needs it."""
    return " ".join(shlex.quote(str(w)) for w in words)


def extract_command(video_list: Path, features: Path, extract_config: Any) -> str:
    """``vad extract`` over the videos listed in ``video_list`` (one path a line, fed by ``xargs``)."""
    from vad.features.extract import ExtractConfig

    return command_line(["xargs", "-d", r"\n", "-a", video_list, "vad", "extract", "--out", features,
                         *changed_options(extract_config, ExtractConfig())])


def train_command(features: Path, labels: Path, fmt: str, model_dir: Path, val_fraction: float, model: Any,
                  train: Any, calibration: Any) -> str:
    """``vad train`` as the run trained (same features, labels and splits, validation carved from train)."""
    from vad.engine.calibration import CalibrationConfig
    from vad.engine.train import TrainConfig
    from vad.models.config import ModelConfig

    return command_line(["vad", "train", "--features", features, "--labels", labels, "--format", fmt, "--out",
                         model_dir, "--val-fraction", val_fraction, *changed_options(model, ModelConfig(), "model"),
                         *changed_options(train, TrainConfig(), "train"),
                         *changed_options(calibration, CalibrationConfig(), "calibration")])


def eval_command(model_dir: Path, features: Path, labels: Path, fmt: str, gt: Path, gt_list: Path, out: Path,
                 device: str) -> str:
    """``vad eval`` on the test split with the ground truth the run wrote."""
    return command_line(["vad", "eval", "--model", model_dir, "--features", features, "--labels", labels, "--format",
                         fmt, "--split", "test", "--gt", gt, "--gt-list", gt_list, "--out", out, "--device", device])
