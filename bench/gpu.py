"""GPU throughput: ``vad extract`` frames/s per batch size, real-time factor, memory peak, and the scoring head.

    python -m bench.gpu                       # CUDA: ViT-B-16 with AMP; prints {"cuda": false, ...} without CUDA
    python -m bench.gpu --device cpu --quick  # the same measurements on CPU with tiny sizes (tests use this)

One code path for every device (``--device``): the backbone is random-initialised, saved as a checkpoint and
loaded through the normal ``--pretrained PATH`` path (:func:`vad.features.backbone.load_backbone`), with AMP
(precision ``auto``: bf16/fp16 autocast on CUDA, fp32 on CPU). A synthetic 30 fps video (moving shapes on noise,
mp4v, 320x240 like UCF-Crime) is extracted by :class:`vad.features.extract.FeatureExtractor` as ``vad extract``
runs it: decode and optical flow in background threads, overlapped with the encoder, pinned host memory on
CUDA. Per batch size (snippets per batch; frames per encoder call = that x F) and number of decode threads
(1, and ``vad extract``'s auto choice: torch threads - 2, at most 8, on CUDA; 1 on CPU):

- ``frames_per_s``: encoded frames per second of the whole extraction (decode, flow, encode, all levels);
- ``encoder_frames_per_s``: the bare ``Backbone.encode_frames`` (preprocess + ViT) on one batch of frames
  already in host memory, the ceiling the pipeline would reach if decoding were free;
- ``realtime_factor_30fps``: seconds of 30 fps video extracted per wall second (snippets/s x S / 30);
- ``memory_peak_mb``: ``torch.cuda.max_memory_allocated`` over that batch size's runs (CPU: the process's
  ``ru_maxrss``).

``head``: the default scoring model (:func:`bench.model_scaling.build_model`) on N random snippets
(16,384 on CUDA), eval + ``inference_mode``, best of three after a warm-up. Output: one JSON line.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SNIPPET_LEN, FRAMES_PER_SNIPPET, REFERENCE_FPS = 16, 4, 30.0
FULL = {"backbone": "ViT-B-16", "batch_sizes": (32, 128, 256), "snippets": 1024, "size": (320, 240), "head": 16384}
QUICK = {"backbone": "vadgraph-tiny-ViT", "batch_sizes": (2, 4, 8), "snippets": 24, "size": (96, 72), "head": 256}


def write_synthetic_video(path: Path, num_frames: int, size: tuple[int, int], fps: float = REFERENCE_FPS,
                          seed: int = 0) -> Path:
    """An mp4v video of ``num_frames`` frames: shapes moving over a noisy background (deterministic)."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    backgrounds = [rng.integers(30, 110, size=(h, w, 3), dtype=np.uint8) for _ in range(4)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write mp4v video to {path}")
    r = max(3, h // 10)
    for i in range(num_frames):
        frame = backgrounds[(i // 8) % len(backgrounds)].copy()
        t = i / fps
        cv2.circle(frame, (int((0.5 + 0.45 * np.sin(t)) * w), h // 2), r, (0, 0, 230), -1)
        cv2.rectangle(frame, (int((t * 40) % w), h // 4), (int((t * 40) % w) + r, h // 4 + r), (230, 200, 0), -1)
        writer.write(frame)
    writer.release()
    return path


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def encoder_fps(extractor, frames: np.ndarray, repeats: int) -> float:
    """Frames/s of the bare ``encode_frames`` on ``frames`` ``(T, H, W, 3)`` uint8 in host memory (best of runs)."""
    import torch

    backbone = extractor.backbone
    batch = torch.from_numpy(frames)
    if backbone.device.type == "cuda":
        batch = batch.pin_memory()
    backbone.encode_frames(batch)  # warm-up: allocator, kernels, autotuning for this shape
    _sync(backbone.device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        backbone.encode_frames(batch)
        _sync(backbone.device)
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def extraction(backbone, video: Path, batch_sizes: tuple[int, ...], repeats: int, motion: bool,
               decode_workers: tuple[int, ...] = (1, 0)) -> tuple[list[dict], dict]:
    """Pipeline and bare-encoder throughput and memory peak for each batch size (snippets per batch) and number
    of decode threads (0: ``vad extract``'s auto choice), and the video's description."""
    import torch

    from vad.features.decode import auto_decode_workers
    from vad.features.extract import ExtractConfig, FeatureExtractor
    from vad.features.video import SnippetConfig, open_video

    with open_video(video, short_side=backbone.image_size) as source:
        frames = source.read(range(min(source.info.num_frames, max(batch_sizes) * FRAMES_PER_SNIPPET)))
        info = source.info
    rows = []
    auto = auto_decode_workers(backbone.device.type, torch.get_num_threads())  # as vad extract chooses
    threads = dict.fromkeys(w or auto for w in decode_workers)  # unique
    for batch, workers in ((b, w) for b in batch_sizes for w in threads):
        cfg = ExtractConfig(backbone=backbone.config, snippets=SnippetConfig(SNIPPET_LEN, FRAMES_PER_SNIPPET),
                            batch_snippets=batch, motion=motion, decode_workers=workers)
        extractor = FeatureExtractor(cfg, backbone)
        _reset_peak(backbone.device)
        reps = np.resize(frames, (batch * FRAMES_PER_SNIPPET, *frames.shape[1:]))  # one encoder call's frames
        bare = encoder_fps(extractor, reps, repeats=3)
        best, snippets = float("inf"), 0
        for _ in range(repeats):
            start = time.perf_counter()
            feats = extractor.extract(video)
            best = min(best, time.perf_counter() - start)
            snippets = feats.num_snippets
        rows.append({
            "batch_snippets": batch,
            "batch_frames": batch * FRAMES_PER_SNIPPET,
            "decode_workers": workers,
            "frames_per_s": snippets * FRAMES_PER_SNIPPET / best,
            "encoder_frames_per_s": bare,
            "pipeline_over_encoder": snippets * FRAMES_PER_SNIPPET / best / bare,
            "realtime_factor_30fps": snippets / best * SNIPPET_LEN / REFERENCE_FPS,
            "seconds": best,
            "memory_peak_mb": _peak_mb(backbone.device),
        })
    described = {"name": Path(info.path).name, "frames": info.num_frames, "snippets": snippets,
                 "size": [info.width, info.height], "fps": info.fps, "decoder": info.backend}
    return rows, described


def head(device, n: int, repeats: int = 3) -> dict:
    """Seconds and memory peak of the default scoring model's forward on ``n`` random snippets."""
    import torch

    from bench.model_scaling import build_model, random_batch

    model = build_model("default", device=str(device))
    batch = random_batch(n, seed=n, device=str(device))
    _reset_peak(device)
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            out = model(batch)
            _sync(device)
            times.append(time.perf_counter() - start)
    assert torch.isfinite(out.scores).all()
    return {"snippets": n, "seconds": min(times[1:]), "memory_peak_mb": _peak_mb(device)}


def run(device_spec: str, quick: bool, repeats: int, motion: bool, threads: int | None,
        video: Path | None = None, decode_workers: tuple[int, ...] = (1, 0), **overrides) -> dict:
    """All measurements on ``device_spec`` (``cuda``, ``cuda:N`` or ``cpu``) as one JSON-ready dict; ``overrides``
    replace entries of the size preset (``backbone``, ``batch_sizes``, ``snippets``, ``size``, ``head``)."""
    import torch

    from vad.features.backbone import BackboneConfig, load_backbone, save_random_checkpoint

    sizes = {**(QUICK if quick else FULL), **{k: v for k, v in overrides.items() if v}}
    device = torch.device(device_spec)
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            video = write_synthetic_video(Path(tmp) / "synthetic.mp4", sizes["snippets"] * SNIPPET_LEN, sizes["size"])
        ckpt = save_random_checkpoint(sizes["backbone"], Path(tmp) / "weights.safetensors")
        backbone = load_backbone(BackboneConfig(sizes["backbone"], str(ckpt), str(device), precision="auto"))
        rows, described = extraction(backbone, video, sizes["batch_sizes"], repeats, motion, decode_workers)
    amp = str(backbone.amp_dtype).removeprefix("torch.") if backbone.amp_dtype else "off (fp32)"
    del backbone  # the head's memory peak is its own (CUDA; CPU RSS is the process's high-water mark)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    best = max(rows, key=lambda r: r["frames_per_s"])
    return {
        "cuda": device.type == "cuda",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} "
                                                                                  f"torch threads)",
        "backbone": sizes["backbone"],
        "weights": "random, loaded from a saved checkpoint",
        "amp": amp,
        "video": described,
        "snippet_len": SNIPPET_LEN,
        "frames_per_snippet": FRAMES_PER_SNIPPET,
        "motion": motion,
        "memory_measure": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "ru_maxrss",
        "extraction": rows,
        "best_batch_snippets": best["batch_snippets"],
        "best_decode_workers": best["decode_workers"],
        "frames_per_s": best["frames_per_s"],
        "realtime_factor_30fps": best["realtime_factor_30fps"],
        "memory_peak_mb": max(r["memory_peak_mb"] for r in rows),
        "head": head(device, sizes["head"]),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--quick", action="store_true", help="tiny backbone, video and head (a test-sized run)")
    ap.add_argument("--repeats", type=int, default=1, help="timed extractions per batch size (best reported)")
    ap.add_argument("--no-motion", action="store_true", help="skip the optical-flow level (default: as vad extract)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on CPU, torch's on CUDA)")
    ap.add_argument("--video", type=Path, help="extract this video instead of the synthetic one")
    ap.add_argument("--backbone", help="open_clip model name (default ViT-B-16; --quick: the tiny test ViT)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", help="snippets per batch (default 32 128 256)")
    ap.add_argument("--snippets", type=int, help="length of the synthetic video in snippets (default 1024)")
    ap.add_argument("--decode-workers", type=int, nargs="+", default=[1, 0],
                    help="decode threads to compare (0: vad extract's auto choice; default 1 0)")
    ap.add_argument("--head-snippets", type=int, help="N for the scoring head (default 16384)")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"cuda": False, "reason": "no CUDA device"}))
        return 0
    threads = args.threads or (1 if args.device == "cpu" else None)
    result = run(args.device, args.quick, args.repeats, not args.no_motion, threads, args.video,
                 decode_workers=tuple(args.decode_workers),
                 backbone=args.backbone, batch_sizes=tuple(args.batch_sizes or ()), snippets=args.snippets,
                 head=args.head_snippets)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
