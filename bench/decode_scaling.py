"""Decode-side throughput of ``vad extract`` without the encoder: how it scales with decode threads.

    python -m bench.decode_scaling                          # 512 snippets of 320x240 video, threads 1 2 4 8
    python -m bench.decode_scaling --workers 1 2 --snippets 64

On a GPU the encoder is fast enough that extraction runs at the speed of this side (decode + optical flow).
For each number of decode threads W (:func:`vad.features.decode.decoded_batches`, as ``vad extract`` runs it)
and FFmpeg threads per reader (0: FFmpeg's choice, about one per core; 1: one, what ``vad extract`` uses with
several workers), it prints encoder-ready frames
per second with the motion level on, and the speed-up over W = 1. ``flow only`` rows time the optical-flow
summaries alone on already-decoded frame pairs, spread over W threads the same way, to tell decoding from flow.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.gpu import FRAMES_PER_SNIPPET, SNIPPET_LEN, write_synthetic_video

SHORT_SIDE = 224  # ViT-B-16's input


def decode_rate(video: Path, plan: np.ndarray, num_frames: int, workers: int, ffmpeg_threads: int,
                batch: int) -> float:
    """Encoder-ready frames per second of the decode side (decode + flow) with ``workers`` threads."""
    from vad.features.decode import decode_plan, decoded_batches
    from vad.features.motion import MotionConfig
    from vad.features.video import open_video

    start = time.perf_counter()
    first = open_video(video, short_side=SHORT_SIDE, threads=ffmpeg_threads)  # probed once, as vad extract does;
    unused = [first]  # the other workers get readers of the validated file (VideoSource.reopen)
    frames = sum(b[1].shape[0] * b[1].shape[1] for b in decoded_batches(
        lambda: unused.pop() if unused else first.reopen(ffmpeg_threads),
        decode_plan(plan, num_frames, motion=True), batch, MotionConfig(), workers, depth=2))
    return frames / (time.perf_counter() - start)


def flow_rate(pairs: np.ndarray, workers: int) -> float:
    """Frame pairs per second of the motion summaries alone, ``pairs`` ``(P, 2, H, W, 3)`` split over threads."""
    from vad.features.motion import MotionConfig, MotionEncoder

    chunks = np.array_split(pairs, workers * 4)
    encoders: dict[int, MotionEncoder] = {}

    def work(chunk: np.ndarray) -> None:
        encoder = encoders.setdefault(threading.get_ident(), MotionEncoder(MotionConfig()))
        encoder.snippets(chunk, chain=False)

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, chunks))
    return len(pairs) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8], help="decode threads to try")
    ap.add_argument("--ffmpeg-threads", type=int, nargs="+", default=[0, 1], help="FFmpeg threads per reader")
    ap.add_argument("--snippets", type=int, default=512, help="video length in snippets of 16 frames")
    ap.add_argument("--batch", type=int, default=32, help="snippets per batch")
    args = ap.parse_args(argv)
    from vad.features.decode import decode_plan
    from vad.features.video import SnippetConfig, open_video, plan_snippets

    print(f"cores: {os.cpu_count()}; video: {args.snippets} snippets x {SNIPPET_LEN} frames, 320x240 mp4v, "
          f"decoded at short side {SHORT_SIDE}; F = {FRAMES_PER_SNIPPET}; batch {args.batch} snippets; motion on")
    with tempfile.TemporaryDirectory() as tmp:
        video = write_synthetic_video(Path(tmp) / "v.mp4", args.snippets * SNIPPET_LEN, (320, 240))
        with open_video(video, short_side=SHORT_SIDE) as source:
            num_frames = source.info.num_frames
            plan = plan_snippets(num_frames, SnippetConfig(SNIPPET_LEN, FRAMES_PER_SNIPPET))
            pairs = source.read(decode_plan(plan[: min(len(plan), 128)], num_frames, True).reshape(-1))
        pairs = pairs.reshape(-1, 2, *pairs.shape[1:])
        print(f"{'what':<22}{'threads':>8}{'frames/s':>10}{'speed-up':>10}")
        for ffmpeg in args.ffmpeg_threads:
            base = None
            for w in args.workers:
                rate = decode_rate(video, plan, num_frames, w, ffmpeg, args.batch)
                base = base or rate
                print(f"{f'decode+flow ffmpeg={ffmpeg}':<22}{w:>8}{rate:>10.0f}{rate / base:>10.2f}", flush=True)
        base = None
        for w in args.workers:
            rate = flow_rate(pairs, w)
            base = base or rate
            print(f"{'flow only (pairs/s)':<22}{w:>8}{rate:>10.0f}{rate / base:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
