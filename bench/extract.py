"""Feature-extraction throughput: the bare ``encode_image`` loop vs the whole ``vad extract`` pipeline.

Same video, same sampled frames, same backbone and device, measured side by side in one run. The bare loop gets
frames already decoded and preprocessed; the pipeline decodes (decord, background thread), preprocesses and
computes all feature levels (clip, frame, patch, and the optical-flow motion level). Target: pipeline >= 0.9x the
bare encoder.

    python -m bench.extract                       # ViT-B-16 (random weights, saved and loaded as a checkpoint)
    python -m bench.extract --backbone vadgraph-tiny-ViT --video path/to/video.mp4
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from vad.features.backbone import BackboneConfig, load_backbone, save_random_checkpoint
from vad.features.extract import ExtractConfig, FeatureExtractor
from vad.features.video import SnippetConfig, open_video, plan_snippets

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def bare_encoder_fps(extractor: FeatureExtractor, video: Path, repeats: int) -> tuple[float, int]:
    """Frames/s of ``model.encode_image`` over the pipeline's own frames, decoded and preprocessed beforehand."""
    bb, cfg = extractor.backbone, extractor.config
    with open_video(video, short_side=bb.image_size) as src:
        plan = plan_snippets(src.info.num_frames, cfg.snippets).reshape(-1)
        frames = torch.from_numpy(src.read(plan))
    batch = cfg.batch_snippets * cfg.snippets.frames_per_snippet
    inputs = [bb.preprocess(frames[i:i + batch]) for i in range(0, len(frames), batch)]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            for x in inputs:
                bb.model.encode_image(x)
        best = min(best, time.perf_counter() - start)
    return len(frames) / best, len(frames)


def pipeline_fps(extractor: FeatureExtractor, video: Path, repeats: int) -> float:
    """Frames/s (encoded frames) of the full extraction of one video, decode included."""
    best, n = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        feats = extractor.extract(video)
        best = min(best, time.perf_counter() - start)
        n = feats.frame.shape[0] * feats.frame.shape[1]
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--video", type=Path, default=VTEST)
    ap.add_argument("--frames-per-snippet", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16, help="snippets per batch")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs for each side")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if not args.video.exists():
        sys.exit(f"{args.video} not found (install Debian's opencv-doc, or pass --video)")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_random_checkpoint(args.backbone, Path(tmp) / "weights.safetensors")
        cfg = ExtractConfig(backbone=BackboneConfig(args.backbone, str(ckpt), args.device),
                            snippets=SnippetConfig(16, args.frames_per_snippet), batch_snippets=args.batch_size)
        extractor = FeatureExtractor(cfg, load_backbone(cfg.backbone))
        extractor.extract(args.video)  # warm-up (allocator, kernels)
        bare, n = bare_encoder_fps(extractor, args.video, args.repeats)
        full = pipeline_fps(extractor, args.video, args.repeats)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"device {args.device}")
    print(f"backbone {args.backbone} (random weights via checkpoint file), video {args.video.name}, "
          f"{n} encoded frames (S=16, F={args.frames_per_snippet}), motion level {'on' if cfg.motion else 'off'}, "
          f"best of {args.repeats}")
    print(f"{'bare encode_image':<28}{bare:10.1f} frames/s")
    print(f"{'vad extract pipeline':<28}{full:10.1f} frames/s")
    print(f"ratio pipeline / bare: {full / bare:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
