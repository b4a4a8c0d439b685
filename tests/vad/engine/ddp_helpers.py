"""Run by ``torchrun`` in test_distributed.py: train the planted dataset and dump what each rank ended with.

``python -m tests.vad.engine.ddp_helpers OUT`` (under torchrun or alone) writes ``OUT/rank{r}.json`` (metric,
epochs) and ``OUT/rank{r}.pt`` (selected weights); the checkpoint goes to ``OUT/model`` and every call of
``save_checkpoint`` leaves ``OUT/saved_by_rank{r}``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import vad.engine.train as train_module
from tests.vad.test_train import FAST, planted_dataset
from vad.engine import distributed
from vad.engine.train import train_model
from vad.features.store import feature_path
from vad.models.config import ModelConfig

MODEL = ModelConfig(feature_dim=16, dropout=0.0)  # no dropout: ranks match one process exactly
CONFIG = FAST  # global batch 8: 2 normal + 2 abnormal per rank


def run(out: Path) -> dict:
    """Train with :data:`CONFIG`; this rank's result summary."""
    out.mkdir(parents=True, exist_ok=True)
    ds, gt = planted_dataset()
    save = train_module.save_checkpoint

    def recording_save(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        (out / f"saved_by_rank{distributed.rank()}").touch()
        return save(*args, **kwargs)

    train_module.save_checkpoint = recording_save
    try:
        result = train_model(ds, MODEL, CONFIG, out / "model", {r.name: gt[r.name] for r in ds.split("val")},
                             progress=False)
    finally:
        train_module.save_checkpoint = save
    rank = distributed.rank()
    torch.save(result.model.state_dict(), out / f"rank{rank}.pt")
    summary = {"best_val": result.best_val, "best_epoch": result.best_epoch, "history": result.history}
    (out / f"rank{rank}.json").write_text(json.dumps(summary))
    return summary


if __name__ == "__main__":
    run(Path(sys.argv[1]))


def write_feature_dir(root: Path) -> None:
    """The planted dataset as ``vad train`` reads it: ``root/features/videos/*.npz`` + ``root/labels.csv``."""
    ds, _ = planted_dataset()
    (root / "features" / "videos").mkdir(parents=True, exist_ok=True)
    rows = ["name,label,split"]
    for name, record in ds.records.items():
        if record.split != "test":
            record.features.save(feature_path(root / "features", name))
            rows.append(f"{name},{record.label},{record.split}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
