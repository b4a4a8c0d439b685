"""Beyond one process: Ray extraction with 1 and 2 workers, and ``vad train`` under torchrun with 1 and 2 ranks.

Both halves run on the same 40 synthetic videos (64x48 px, 160-256 frames, the tiny random backbone, S=4 F=2) on
this machine. Extraction: the local engine (torch's and OpenCV's default threads, then 1 thread), then ``--engine
ray`` with 1 and 2 actors (1 CPU, 1 torch and 1 OpenCV thread each) in a fresh local Ray runtime per run; the wall
time counts everything the call does once Ray is up (the check task, actor start-up, every video), the steady rate
counts the videos finished after the first one per second (start-up excluded). Training: ``torchrun
--nproc_per_node N -m apps.cli train`` on the 2-worker features, the same seed and global batch (8), 1 thread per
rank, every epoch run (no early stop); the time per epoch is the one ``vad train`` reports (training steps only),
the metric is the selected epoch's validation frame AUC.

    python -m bench.scale                 # ~4-6 min on 2 cores
    python -m bench.scale --videos 40 --epochs 20
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN_LINE = re.compile(r"train: best epoch (\d+), val (\w+) ([0-9.]+), .* ([0-9.]+) s/epoch")


def make_inputs(root: Path, videos: int) -> tuple[Path, object]:
    """``(benchmark dir, extraction config)``: the synthetic videos and the tiny random backbone saved to a file."""
    from vad.features.backbone import TINY_MODEL, BackboneConfig, save_random_checkpoint
    from vad.features.extract import ExtractConfig
    from vad.features.video import SnippetConfig
    from vad.synth.benchmark import SynthConfig
    from vad.synth.generate import make_benchmark

    bench = make_benchmark(root / "bench", SynthConfig(videos=videos, seed=11, width=64, height=48, min_frames=160,
                                                       max_frames=256), progress=False)
    ckpt = save_random_checkpoint(TINY_MODEL, root / "tiny.safetensors", seed=0)
    config = ExtractConfig(backbone=BackboneConfig(TINY_MODEL, str(ckpt), "cpu"), snippets=SnippetConfig(4, 2))
    return bench.root, config


def timed_extraction(run) -> tuple[float, float, int]:
    """``(wall s, steady videos/s, videos written)`` of ``run()``; the steady rate starts at the first video."""
    import vad.features.extract as extract

    stamps: list[float] = []
    record = extract.ExtractJob.record

    def stamped(job, outcome) -> None:
        stamps.append(time.perf_counter())
        record(job, outcome)

    extract.ExtractJob.record = stamped
    try:
        started = time.perf_counter()
        report = run()
        wall = time.perf_counter() - started
    finally:
        extract.ExtractJob.record = record
    assert not report.failed, report.failed
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
    return wall, steady, len(report.written)


def extraction(bench: Path, config, root: Path, workers: int | None, threads: int | None = None
               ) -> tuple[float, float, int]:
    """Extract ``bench``'s videos locally (``workers`` None; ``threads`` torch and OpenCV threads, None: their
    defaults) or on a fresh local Ray runtime with that many actors."""
    out = root / f"feats-{workers or f'local{threads}'}"
    if workers is None:
        import cv2

        from vad.features.extract import extract_videos

        saved = torch.get_num_threads(), cv2.getNumThreads()
        if threads:
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        try:
            return timed_extraction(lambda: extract_videos([bench / "videos"], out, config, progress=False))
        finally:
            torch.set_num_threads(saved[0])
            cv2.setNumThreads(saved[1])
    import ray

    from vad.engine.ray_engine import EngineConfig, extract_videos_ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        return timed_extraction(lambda: extract_videos_ray([bench / "videos"], out, config,
                                                           EngineConfig("ray", workers=workers), progress=False))
    finally:
        ray.shutdown()


def train(bench: Path, feats: Path, out: Path, nproc: int, epochs: int) -> tuple[float, str, float, int, float]:
    """``(s/epoch, metric name, best val metric, best epoch, wall s)`` of ``torchrun --nproc_per_node nproc``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "apps.cli", "-q", "train", "--features", str(feats), "--benchmark", str(bench), "--out", str(out),
           "--epochs", str(epochs), "--patience", str(epochs), "--device", "cpu", "--seed", "0",
           "--train.batch-size", "8"]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    match = TRAIN_LINE.search(done.stdout)
    if done.returncode != 0 or not match:
        sys.exit(f"torchrun train ({nproc} ranks) failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
    return float(match.group(4)), match.group(2), float(match.group(3)), int(match.group(1)), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    import ray

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, ray {ray.__version__}; "
          f"{args.videos} synthetic videos 64x48, 160-256 frames, tiny random backbone, S=4 F=2, CPU")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench, config = make_inputs(root, args.videos)
        rows = {name: extraction(bench, config, root, workers, threads)
                for name, workers, threads in (("local, default threads", None, None), ("local, 1 thread", None, 1),
                                               ("ray, 1 worker", 1, None), ("ray, 2 workers", 2, None))}
        print(f"\n{'extraction':<24}{'wall s':>8}{'videos/s':>10}{'steady videos/s':>17}")
        for name, (wall, steady, n) in rows.items():
            print(f"{name:<24}{wall:8.1f}{n / wall:10.2f}{steady:17.2f}")
        (w1, s1, _), (w2, s2, _) = rows["ray, 1 worker"], rows["ray, 2 workers"]
        print(f"ray 2 workers / 1 worker throughput: {w1 / w2:.2f}x wall (start-up included), "
              f"{s2 / s1:.2f}x steady")
        runs = {n: train(bench, root / "feats-2", root / f"model-{n}", n, args.epochs) for n in (1, 2)}
        print(f"\n{'torchrun train':<24}{'s/epoch':>8}{'wall s':>8}  selected epoch, validation metric")
        for n, (per_epoch, metric, val, epoch, wall) in runs.items():
            print(f"{f'{n} rank' + ('s' if n > 1 else ''):<24}{per_epoch:8.2f}{wall:8.1f}  epoch {epoch}, "
                  f"{metric} {val:.4f}")
        print(f"torchrun 2 ranks / 1 rank time per epoch: {runs[2][0] / runs[1][0]:.2f}x "
              f"({args.epochs} epochs, same seed and global batch)")


if __name__ == "__main__":
    main()
