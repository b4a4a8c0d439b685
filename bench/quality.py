"""Detection quality on a fixed-seed synthetic benchmark: the full model, each ablation, and two baselines.

One small random-initialised open_clip backbone (written to a checkpoint file and loaded back through
``--pretrained PATH``), features extracted once and cached; every variant trained with several seeds, model
selection on the val split, metrics on the test split. Prints a table of mean ± std frame AUC and AP, the
parameter count and seconds per epoch.

    python bench/quality.py                  # 300 videos, 3 seeds (about 15 minutes on 2 CPU cores)
    python bench/quality.py --videos 120 --seeds 1 --out bench/out/quality-small
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vad.data.dataset import load_dataset
from vad.data.groundtruth import read_synth_gt
from vad.engine.evaluate import GroundTruthSource, evaluate_model
from vad.engine.train import TrainConfig, train_model
from vad.features.backbone import TINY_MODEL, BackboneConfig, save_random_checkpoint
from vad.features.extract import ExtractConfig, extract_videos
from vad.features.video import SnippetConfig
from vad.models.checkpoint import LoadedModel
from vad.models.config import ModelConfig
from vad.synth.benchmark import SynthConfig
from vad.synth.generate import make_benchmark

VARIANTS: dict[str, dict] = {
    "full (LEGO + hop attention + MM-QFormer)": {},
    "ablation: concat fusion instead of LEGO": {"fusion": "concat"},
    "ablation: plain attention instead of hop": {"attention": "plain"},
    "ablation: no MM-QFormer": {"qformer": False},
    "LEGO + scorer (no attention, no MM-QFormer)": {"attention": "none", "qformer": False},
    "concat + scorer (no attention, no MM-QFormer)": {"fusion": "concat", "attention": "none", "qformer": False},
    "baseline: MIL-MLP (Sultani)": {"arch": "mil_mlp"},
    "baseline: concat + MTN temporal head": {"arch": "mtn_concat"},
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
                        snippets=SnippetConfig(snippet_len=8, frames_per_snippet=2), batch_snippets=32)
    report = extract_videos([bench / "videos"], feats, cfg)
    if report.failed:
        raise SystemExit(f"feature extraction failed for {len(report.failed)} videos")
    return bench, feats


def deviation_reference(dataset, bench: Path) -> tuple[float, float]:
    """Training-free reference: a snippet's distance from its video's median clip feature, min-max per video."""
    from vad.engine.metrics import evaluate, expand_to_frames

    gt = read_synth_gt(bench, "test")
    scores = {}
    for r in dataset.split("test"):
        f = r.features
        d = np.linalg.norm(f.clip - np.median(f.clip, axis=0), axis=1)
        d = (d - d.min()) / (d.max() - d.min() + 1e-9)
        scores[r.name] = expand_to_frames(d, f.num_video_frames, f.meta.snippet_len)
    report = evaluate(scores, gt.frames, gt.classes)
    return 100 * report.auc, 100 * report.ap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/out/quality"))
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--data-seed", type=int, default=7)
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--only", nargs="*", help="substrings of variant names to run")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    bench, feats = prepare(args.out, args.videos, args.data_seed, args.difficulty)
    dataset = load_dataset(feats, bench)
    val_gt = read_synth_gt(bench, "val").frames
    base_model = ModelConfig(feature_dim=dataset.dim, hidden=args.hidden)
    rows = []
    for name, overrides in VARIANTS.items():
        if args.only and not any(s in name for s in args.only):
            continue
        aucs, aps, secs, params = [], [], [], 0
        for seed in range(args.seeds):
            train_cfg = TrainConfig(epochs=args.epochs, num_snippets=32, seed=seed, device="cpu", patience=8)
            result = train_model(dataset, replace(base_model, **overrides), train_cfg, None, val_gt, progress=False)
            loaded = LoadedModel(result.model, dataset.levels(), dataset.text.embeddings, dataset.text.prompts, {}, {})
            report = evaluate_model(loaded, dataset, "test", GroundTruthSource(benchmark=str(bench))).report
            aucs.append(100 * report.auc)
            aps.append(100 * report.ap)
            secs.append(result.seconds_per_epoch)
            params = result.model.num_parameters()
        rows.append({"variant": name, "auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
                     "ap_mean": float(np.mean(aps)), "ap_std": float(np.std(aps)), "aucs": aucs,
                     "params": params, "sec_per_epoch": float(np.mean(secs))})
        print(f"  done: {name}: AUC {np.mean(aucs):.2f} ± {np.std(aucs):.2f}", flush=True)
    ref_auc, ref_ap = deviation_reference(dataset, bench)
    rows.append({"variant": "reference: distance from video median (no training)", "auc_mean": ref_auc,
                 "auc_std": 0.0, "ap_mean": ref_ap, "ap_std": 0.0, "aucs": [ref_auc], "params": 0,
                 "sec_per_epoch": 0.0})
    counts = {s: len(dataset.split(s)) for s in ("train", "val", "test")}
    print(f"\nsynthetic benchmark: {args.videos} videos (seed {args.data_seed}, difficulty {args.difficulty}), "
          f"splits {counts}; backbone {TINY_MODEL} (random weights via checkpoint); {args.seeds} training seeds")
    print(f"{'variant':<52}{'frame AUC %':>16}{'AP %':>16}{'params':>10}{'s/epoch':>9}")
    for r in rows:
        print(f"{r['variant']:<52}{r['auc_mean']:>9.2f} ± {r['auc_std']:<4.2f}{r['ap_mean']:>9.2f} ± "
              f"{r['ap_std']:<4.2f}{r['params']:>10,}{r['sec_per_epoch']:>9.2f}")
    print(f"total {time.perf_counter() - started:.0f} s")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
