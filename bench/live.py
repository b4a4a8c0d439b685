"""Live scoring (``vad watch``): capture→score latency, real-time factor, and memory over a long stream.

1. Latency: a synthetic clip (ffmpeg testsrc2) is served at its native rate by ffmpeg as MPEG-TS over HTTP on
   127.0.0.1 and scored live (evidence clips on, threshold 0 so an alert and its recorder run the whole time);
   reports p50/p95 latency from the snippet's last frame being read to its score, and the real-time factor
   (scoring seconds per second of stream; < 1 keeps up).
2. Memory: a long stream (default 10 min of stream time, ``--long-minutes 30`` for half an hour) read as fast
   as scoring allows (a file source, accelerated, every snippet scored, one alert and its clip open
   throughout); RSS and its anonymous part (heap, stacks) by minute of stream time, read from the run's own
   status lines (one a second of wall time): at the start (model loaded, before the stream opens), after a
   warm-up minute (library code paged in by the first snippet, allocator pools, the context filling up), at
   several points and at the end, and the slope per 10 minutes after the warm-up (least squares over every
   status line, and over the last half alone), so warm-up that stops is told apart from steady growth.

Both run ``python -m apps.watch`` in a fresh process, as a user would.

The model is a tiny vadgraph model trained for a few seconds on synthetic videos, on features of a random-
initialised backbone saved as a checkpoint (``--backbone ViT-B-16`` for the real architecture's cost).

    python -m bench.live                                   # tiny backbone, a few minutes on 2 CPU cores
    python -m bench.live --backbone ViT-B-16 --long-minutes 5
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vad.features.backbone import TINY_MODEL

ROOT = Path(__file__).resolve().parents[1]


def train_model(root: Path, backbone: str, device: str) -> Path:
    """A small trained model directory (synth → extract → train), as the test suite makes one."""
    from vad.engine.train import TrainConfig, train_from_paths
    from vad.features.backbone import BackboneConfig, save_random_checkpoint
    from vad.features.extract import ExtractConfig, extract_videos
    from vad.features.video import SnippetConfig
    from vad.models.config import ModelConfig
    from vad.synth.benchmark import SynthConfig
    from vad.synth.generate import make_benchmark

    ckpt = save_random_checkpoint(backbone, root / "backbone.safetensors", seed=0)
    bench = make_benchmark(root / "synth", SynthConfig(videos=12, seed=3, min_frames=64, max_frames=96),
                           progress=False)
    extract_videos([bench.root / "videos"], root / "feats",
                   ExtractConfig(backbone=BackboneConfig(backbone, str(ckpt), device), snippets=SnippetConfig(16, 2)),
                   progress=False)
    train_from_paths(root / "feats", root / "model", bench.root, model_config=ModelConfig(hidden=64),
                     config=TrainConfig(epochs=2, batch_size=4, num_snippets=8, device=device), progress=False)
    return root / "model"


def _has_libx264() -> bool:
    return "libx264" in subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout


def make_clip(path: Path, seconds: float, fps: int, size: str) -> Path:
    """An H.264 (MPEG-4 part 2 without libx264) clip of ffmpeg's moving test pattern, a keyframe a second."""
    codec = ["-c:v", "libx264", "-preset", "ultrafast"] if _has_libx264() else ["-c:v", "mpeg4", "-q:v", "5"]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
                    "-t", str(seconds), *codec, "-g", str(fps), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STATUS = re.compile(r"\(([\d.]+) s of stream in [\d.]+ s\).* RSS [\d.]+ -> ([\d.]+) MB \(anonymous \S+ -> ([\d.]+)\)")
Sample = tuple[float, float, float]  # minutes of stream, RSS MB, its anonymous part MB


def watch(source: str, model: Path, events: Path, *extra: str) -> tuple[dict, list[Sample]]:
    """Run ``python -m apps.watch`` (a fresh process, as users run it) with threshold 0 (one alert throughout);
    its ``stop`` event and memory samples from its status lines, starting with the memory at start."""
    cmd = [sys.executable, "-m", "apps.watch", source, "--model", str(model), "--threshold", "0", "--min-alert", "1",
           "--events", str(events), "--backoff", "0.2", "--max-reconnects", "1", "--status-every", "1", *extra]
    log = events.with_suffix(".stderr")
    with log.open("w") as err:
        code = subprocess.run(cmd, cwd=ROOT, stderr=err).returncode
    stop = json.loads(events.read_text().splitlines()[-1])
    if code != 0 or not stop.get("snippets"):
        raise SystemExit(f"apps.watch exited {code} after {stop.get('snippets')} snippets:\n{log.read_text()[-2000:]}")
    curve = [(float(m[1]) / 60, float(m[2]), float(m[3])) for m in STATUS.finditer(log.read_text())]
    return stop, [(0.0, stop["rss_start_mb"], stop["anon_start_mb"]), *curve[:-1],
                  (stop["stream_s"] / 60, stop["rss_end_mb"], stop["anon_end_mb"])]


def at_minute(curve: list[tuple[float, float]], minute: float) -> float:
    """Memory of the first sample at or after ``minute`` of stream (the last sample if none)."""
    return next((mb for m, mb in curve if m >= minute), curve[-1][1])


def slope_per_10_min(curve: list[tuple[float, float]], since: float) -> float:
    """Least-squares growth in MB per 10 minutes of stream, over the samples from ``since`` on."""
    pts = [(m, mb) for m, mb in curve if m >= since]
    if len(pts) < 2 or pts[-1][0] - pts[0][0] <= 0:
        return float("nan")
    mean_m, mean_r = sum(m for m, _ in pts) / len(pts), sum(r for _, r in pts) / len(pts)
    var = sum((m - mean_m) ** 2 for m, _ in pts)
    return 10 * sum((m - mean_m) * (r - mean_r) for m, r in pts) / var


def curve_lines(name: str, curve: list[tuple[float, float]], warmup: float, target: str = "") -> list[str]:
    """One memory curve at a few minutes, and its growth start to end, after the warm-up, and its slopes."""
    end = curve[-1][0]
    marks = sorted({0.0, warmup, *(m for m in (2, 5, 10, 15, 20, 25) if m < end), round(end, 1)})
    points = " | ".join(f"{m:g}: {at_minute(curve, m):.0f}" for m in marks)
    start, warm, last = curve[0][1], at_minute(curve, warmup), curve[-1][1]
    after, late = slope_per_10_min(curve, warmup), slope_per_10_min(curve, end / 2)
    return [f"{name} by minute of stream (MB): {points}; peak {max(mb for _, mb in curve):.0f}",
            f"  growth start -> end {last - start:+.0f} MB{target}; after the {warmup:g}-minute warm-up -> end "
            f"{last - warm:+.0f} MB; slope after the warm-up {after:+.1f} MB / 10 min, over the last half "
            f"{late:+.1f} MB / 10 min"]


def memory_lines(samples: list[Sample], warmup: float) -> list[str]:
    """The RSS curve and its anonymous part's, as printed lines."""
    return [f"memory ({len(samples)} samples; minute 0 = model loaded, before the stream opens):",
            *curve_lines("RSS", [(m, rss) for m, rss, _ in samples], warmup, " (target < 50 MB)"),
            *curve_lines("anonymous part (heap, stacks)", [(m, anon) for m, _, anon in samples], warmup),
            "  the rest of RSS is mapped files: library code paged in when first run (the first snippet's torch "
            "kernels, the decoder, the clip encoder), shared and reclaimable; the open alert's clip keeps its MP4 "
            "index in memory until the alert ends (about 0.1 MB per minute of clip)"]


def latency_run(model: Path, clip: Path, out: Path, window: int, device: str) -> dict:
    """Stream ``clip`` at its native rate over loopback HTTP (ffmpeg -re) and score it live."""
    port = free_port()
    bsf = [] if _has_libx264() else ["-bsf:v", "dump_extra"]  # MPEG-4 part 2 needs its headers in-band in TS
    server = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-i", str(clip), "-c", "copy", *bsf, "-f",
                               "mpegts", "-listen", "1", f"http://127.0.0.1:{port}"], stdin=subprocess.DEVNULL)
    try:
        stop, _ = watch(f"http://127.0.0.1:{port}", model, out / "latency.jsonl", "--window", str(window),
                        "--device", device)
    finally:
        server.kill()
        server.wait()
    return stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default=TINY_MODEL, help=f"open_clip name, random weights ({TINY_MODEL})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--window", type=int, default=64, help="W: snippets of context (64)")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--size", default="320x240", help="stream frame size (320x240)")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="native-rate stream length (30)")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="accelerated stream length (10)")
    parser.add_argument("--warmup-minutes", type=float, default=1.0, help="stream minutes counted as warm-up (1)")
    parser.add_argument("--keep", type=Path, help="keep the work directory here (events, clips)")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("bench/live: needs ffmpeg (it makes and serves the streams)", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="vad-bench-live-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# live scoring bench: {args.backbone} (random weights), W={args.window}, {args.size}@{args.fps} fps, "
          f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    began = time.perf_counter()
    model = train_model(work / "train", args.backbone, args.device)
    print(f"model trained in {time.perf_counter() - began:.1f} s")

    clip = make_clip(work / "latency.mp4", args.latency_seconds, args.fps, args.size)
    s = latency_run(model, clip, work, args.window, args.device)
    print(f"latency (native rate over loopback HTTP, {s['stream_s']:.0f} s): p50 {s['latency_p50_ms']:.0f} ms, "
          f"p95 {s['latency_p95_ms']:.0f} ms, real-time factor {s['rtf']:.3f}, {s['snippets']} snippets, "
          f"dropped {s['dropped_snippets']}, clips {len(s['clips'])}")

    began = time.perf_counter()
    clip = make_clip(work / "long.mp4", args.long_minutes * 60, args.fps, args.size)
    print(f"long clip made in {time.perf_counter() - began:.1f} s")
    s, curve = watch(str(clip), model, work / "long.jsonl", "--window", str(args.window), "--device", args.device,
                     "--no-snippet-events")
    print(f"long run ({s['stream_s'] / 60:.1f} min of stream in {s['wall_s']:.0f} s, "
          f"{s['stream_s'] / s['wall_s']:.1f}x real time, every snippet scored, one alert + clip open throughout): "
          f"rtf {s['rtf']:.3f}, {s['snippets']} snippets")
    print("\n".join(memory_lines(curve, args.warmup_minutes)))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
