"""Live scoring (``vad watch``): capture→score latency, real-time factor, and memory over a long stream.

1. Latency: a synthetic clip (ffmpeg testsrc2) is served at its native rate by ffmpeg as MPEG-TS over HTTP on
   127.0.0.1 and scored live (evidence clips on, threshold 0 so an alert and its recorder run the whole time);
   reports p50/p95 latency from the snippet's last frame being read to its score, and the real-time factor
   (scoring seconds per second of stream; < 1 keeps up).
2. Memory: a long stream (default 10 min of stream time, ``--long-minutes 30`` for half an hour) read as fast
   as scoring allows (a file source, accelerated, every snippet scored, one alert and its clip open
   throughout); RSS at start (model loaded), after 10% of the run, at the end, and the peak of samples
   taken every 2 s.

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


def watch(source: str, model: Path, events: Path, *extra: str) -> tuple[dict, list[float]]:
    """Run ``python -m apps.watch`` (a fresh process, as users run it) with threshold 0 (one alert throughout);
    its ``stop`` event and its RSS sampled every 2 s while streaming."""
    cmd = [sys.executable, "-m", "apps.watch", source, "--model", str(model), "--threshold", "0", "--min-alert", "1",
           "--events", str(events), "--backoff", "0.2", "--max-reconnects", "1", "--status-every", "30", *extra]
    child = subprocess.Popen(cmd, cwd=ROOT)
    samples: list[float] = []  # taken once the stream is open (the model is loaded by then)
    while child.poll() is None:
        try:
            if "stream_open" not in events.read_text():
                time.sleep(0.5)
                continue
            with open(f"/proc/{child.pid}/status", encoding="ascii") as fh:
                samples += [int(ln.split()[1]) / 1024 for ln in fh if ln.startswith("VmRSS:")]
        except OSError:
            pass
        time.sleep(2.0)
    stop = json.loads(events.read_text().splitlines()[-1])
    if child.returncode != 0 or not stop.get("snippets"):
        raise SystemExit(f"apps.watch exited {child.returncode} after {stop.get('snippets')} snippets")
    return stop, samples


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
    s, samples = watch(str(clip), model, work / "long.jsonl", "--window", str(args.window), "--device", args.device,
                       "--no-snippet-events")
    warm = samples[min(len(samples) - 1, max(1, len(samples) // 10))] if samples else float("nan")
    print(f"long run ({s['stream_s'] / 60:.1f} min of stream in {s['wall_s']:.0f} s, "
          f"{s['stream_s'] / s['wall_s']:.1f}x real time, every snippet scored, one alert + clip open throughout): "
          f"RSS start {s['rss_start_mb']:.0f} MB, after 10% {warm:.0f} MB, end {s['rss_end_mb']:.0f} MB, "
          f"peak {max(samples, default=float('nan')):.0f} MB; rtf {s['rtf']:.3f}, {s['snippets']} snippets")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
