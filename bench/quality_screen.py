"""Screen one model or training change on the quality bench's cached features, with per-class frame AUC.

    python -m bench.quality_screen --model '{"members": 1}' --seeds 5
    python -m bench.quality_screen --model '{"hidden": 128}' --train '{"epochs": 80}' --seeds 3
    python -m bench.quality_screen --model '{"lego": {"P": 3, "Q": 3}}'     # nested configs merge key by key
    python -m bench.quality_screen --features /tmp/other-features --seeds 5   # e.g. motion re-extracted

Faster than ``bench.quality`` for trying one idea (no table, no baselines): the features of ``python -m
bench.quality`` must exist (run it once). Prints mean ± std over seeds of frame and leak AUC, the AUC of each
seed, and the mean per-class AUC (each class's abnormal videos against all normal videos).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vad.data.dataset import load_dataset
from vad.data.groundtruth import read_synth_gt
from vad.engine.evaluate import GroundTruthSource, evaluate_model
from vad.engine.train import TrainConfig, train_model
from vad.models.checkpoint import LoadedModel
from vad.models.config import ModelConfig


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"), help="bench.quality's output folder")
    ap.add_argument("--features", type=Path, help="features to use instead of OUT/features")
    ap.add_argument("--model", default="{}", help="ModelConfig overrides as JSON")
    ap.add_argument("--train", default="{}", help="TrainConfig overrides as JSON")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)
    bench, feats = args.out / "bench", args.features or args.out / "features"
    if not (bench / "benchmark.json").exists():
        raise SystemExit(f"{bench}: no benchmark; run `python -m bench.quality` first")
    torch.set_num_threads(1)
    dataset = load_dataset(feats, bench)
    val_gt = read_synth_gt(bench, "val").frames
    model_over, train_over = json.loads(args.model), json.loads(args.train)
    aucs, leaks, per_class = [], [], {}
    model = ModelConfig.from_dict(_merged(ModelConfig().to_dict(), model_over))  # nested: {"lego": {"P": 3}}
    for seed in range(args.seeds):
        train = replace(TrainConfig(epochs=40, num_snippets=32, device="cpu", seed=seed), **train_over)
        result = train_model(dataset, model, train, None, val_gt, progress=False)
        loaded = LoadedModel(result.model, dataset.levels(), dataset.text.embeddings, dataset.text.prompts, {}, {})
        report = evaluate_model(loaded, dataset, "test", GroundTruthSource(benchmark=str(bench))).report
        aucs.append(100 * report.auc)
        leaks.append(100 * report.leak_auc)
        for cls, auc in report.per_class_auc.items():
            per_class.setdefault(cls, []).append(100 * auc)
        print(f"seed {seed}: frame AUC {aucs[-1]:.2f} leak {leaks[-1]:.2f}", flush=True)
    print(f"model {model_over} train {train_over}: frame AUC {np.mean(aucs):.2f} ± {np.std(aucs):.2f}, "
          f"leak {np.mean(leaks):.2f} ± {np.std(leaks):.2f} over {args.seeds} seeds")
    print("per class: " + ", ".join(f"{c} {np.mean(v):.1f}" for c, v in per_class.items()))


def _merged(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on top, nested dicts merged key by key."""
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in over.items()}}


if __name__ == "__main__":
    main()
