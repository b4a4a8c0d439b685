"""Detection quality on a fixed-seed synthetic benchmark: the full model, each ablation, and two baselines.

One small random-initialised open_clip backbone (written to a checkpoint file and loaded back through
``--pretrained PATH``), features extracted once and cached; every variant trained with several seeds, model
selection on the val split, metrics on the test split. Prints a table of mean ± std frame AUC, leak AUC
(normal frames of abnormal videos vs normal videos; 50 = the model localises) and AP, the parameter count and
seconds per epoch, and writes ``results.json`` and a Markdown table (``results.md``) beside the cache.

    python -m bench.quality                  # 300 videos, 5 seeds
    python -m bench.quality --videos 120 --seeds 2 --out bench/out/quality-small
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from vad.data.dataset import load_dataset
from vad.data.groundtruth import read_synth_gt
from vad.engine.evaluate import GroundTruthSource, evaluate_model
from vad.engine.reference import median_distance_scores
from vad.engine.train import TrainConfig, train_model
from vad.features.backbone import TINY_MODEL, BackboneConfig, save_random_checkpoint
from vad.features.extract import ExtractConfig, extract_videos
from vad.features.video import SnippetConfig
from vad.models.checkpoint import LoadedModel
from vad.models.config import ModelConfig
from vad.synth.benchmark import SynthConfig
from vad.synth.generate import make_benchmark

DEFAULT = "default: LEGO relations + hop attention + MM-QFormer (context centred per video)"
VARIANTS: dict[str, dict] = {
    DEFAULT: {},
    "ablation: concat fusion instead of LEGO": {"fusion": "concat"},
    "ablation: LEGO fusion weights frozen at uniform": {"learn_fusion": False},
    "ablation: LEGO propagation (G X W) instead of relations": {"readout": "propagate"},
    "ablation: plain attention instead of hop": {"attention": "plain"},
    "ablation: no graph attention": {"attention": "none"},
    "ablation: no MM-QFormer": {"qformer": False},
    "ablation: context not centred per video": {"context": "none"},
    "ablation: no motion level": {"levels": ("clip", "frame", "patch", "text")},
    "LEGO relations + scorer only": {"attention": "none", "qformer": False},
    "concat + scorer only": {"fusion": "concat", "attention": "none", "qformer": False},
    "baseline: MIL-MLP (Sultani)": {"arch": "mil_mlp"},
    "baseline: concat + MTN temporal head": {"arch": "mtn_concat"},
}
TRAIN_OVERRIDES: dict[str, dict] = {
    "with degree-variance regulariser (weight 0.1)": {"degree_weight": 0.1},
}


def prepare(out: Path, videos: int, data_seed: int, difficulty: float) -> tuple[Path, Path]:
    """Synthesise the benchmark and extract its features once (both cached under ``out``)."""
    bench, feats = out / "bench", out / "features"
    if not (bench / "benchmark.json").exists():
        make_benchmark(bench, SynthConfig(videos=videos, seed=data_seed, difficulty=difficulty))
    ckpt = out / "backbone.safetensors"
    if not ckpt.exists():
        save_random_checkpoint(TINY_MODEL, ckpt, seed=0)
    cfg = ExtractConfig(backbone=BackboneConfig(TINY_MODEL, str(ckpt), "cpu", patch_grid=2),
                        snippets=SnippetConfig(snippet_len=8, frames_per_snippet=2), batch_snippets=32, motion=True)
    report = extract_videos([bench / "videos"], feats, cfg)
    if report.failed:
        raise SystemExit(f"feature extraction failed for {len(report.failed)} videos")
    return bench, feats


def deviation_reference(dataset, bench: Path, levels: tuple[str, ...] = ("clip", "motion")):
    """Training-free reference (:mod:`vad.engine.reference`) evaluated on the test split."""
    from vad.engine.metrics import evaluate

    gt = read_synth_gt(bench, "test")
    return evaluate(median_distance_scores(dataset, "test", levels), gt.frames, gt.classes)


def run_variant(dataset, bench: Path, model_cfg: ModelConfig, train_cfg: TrainConfig, seeds: int,
                val_gt) -> dict:
    """Train and test one variant with ``seeds`` training seeds: the row of the results table."""
    rows = {"auc": [], "leak": [], "ap": [], "sec": []}
    params = 0
    for seed in range(seeds):
        result = train_model(dataset, model_cfg, replace(train_cfg, seed=seed), None, val_gt, progress=False)
        loaded = LoadedModel(result.model, dataset.levels(), dataset.text.embeddings, dataset.text.prompts, {}, {})
        report = evaluate_model(loaded, dataset, "test", GroundTruthSource(benchmark=str(bench))).report
        rows["auc"].append(100 * report.auc)
        rows["leak"].append(100 * report.leak_auc)
        rows["ap"].append(100 * report.ap)
        rows["sec"].append(result.seconds_per_epoch)
        print(f"    seed {seed}: AUC {rows['auc'][-1]:.2f} leak {rows['leak'][-1]:.2f} (best epoch {result.best_epoch}, "
              f"{len(result.history)} epochs, {result.seconds_per_epoch:.2f} s/epoch)", flush=True)
        params = result.model.num_parameters()
    return {**{f"{k}_mean": float(np.mean(v)) for k, v in rows.items()},
            **{f"{k}_std": float(np.std(v)) for k, v in rows.items()}, "aucs": rows["auc"], "params": params}


def format_rows(rows: list[dict]) -> list[str]:
    """The results as a Markdown table (mean ± std over seeds)."""
    out = ["| variant | frame AUC % | leak AUC % | AP % | params | s/epoch |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['variant']} | {r['auc_mean']:.2f} ± {r['auc_std']:.2f} | {r['leak_mean']:.2f} ± "
                   f"{r['leak_std']:.2f} | {r['ap_mean']:.2f} ± {r['ap_std']:.2f} | {r['params']:,} | "
                   f"{r['sec_mean']:.2f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--data-seed", type=int, default=7)
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--only", nargs="*", help="substrings of variant names to run")
    args = ap.parse_args()
    started = time.perf_counter()
    bench, feats = prepare(args.out, args.videos, args.data_seed, args.difficulty)
    dataset = load_dataset(feats, bench)
    val_gt = read_synth_gt(bench, "val").frames
    base_model = ModelConfig(hidden=args.hidden)
    base_train = TrainConfig(epochs=args.epochs, num_snippets=32, device="cpu")
    jobs = [(name, replace(base_model, **o), base_train) for name, o in VARIANTS.items()]
    jobs += [(f"default {name}", base_model, replace(base_train, **o)) for name, o in TRAIN_OVERRIDES.items()]
    rows = []
    for name, model_cfg, train_cfg in jobs:
        if args.only and not any(s in name for s in args.only):
            continue
        rows.append({"variant": name, **run_variant(dataset, bench, model_cfg, train_cfg, args.seeds, val_gt)})
        print(f"  done: {name}: AUC {rows[-1]['auc_mean']:.2f} ± {rows[-1]['auc_std']:.2f}, leak "
              f"{rows[-1]['leak_mean']:.2f}", flush=True)
    for levels in (("clip",), ("clip", "motion")):
        ref = deviation_reference(dataset, bench, levels)
        rows.append({"variant": f"reference: distance from video median, {' + '.join(levels)} (no training)",
                     "auc_mean": 100 * ref.auc, "auc_std": 0.0, "leak_mean": 100 * ref.leak_auc, "leak_std": 0.0,
                     "ap_mean": 100 * ref.ap, "ap_std": 0.0, "sec_mean": 0.0, "sec_std": 0.0, "aucs": [], "params": 0})
    counts = {s: len(dataset.split(s)) for s in ("train", "val", "test")}
    header = (f"synthetic benchmark: {args.videos} videos (seed {args.data_seed}, difficulty {args.difficulty}), "
              f"splits {counts}; backbone {TINY_MODEL} (random weights via checkpoint); {args.seeds} training "
              f"seeds; `python -m bench.quality --videos {args.videos} --seeds {args.seeds}` "
              f"({time.strftime('%Y-%m-%d')}, {time.perf_counter() - started:.0f} s)")
    table = "\n".join([header, "", *format_rows(rows)])
    print("\n" + table)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    (args.out / "results.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
