"""Motion level: cost per snippet and run / walk / freeze separability of each flow method and size.

Cost is the wall time of ``MotionEncoder.snippets`` per snippet of F frames, chained across snippets (F flow
pairs per snippet, as in extraction), one OpenCV thread. Separability is measured on synthetic clips of a
textured disc (random size, texture, direction, +-20% speed, sensor noise) that freezes, walks (1.5
px/frame) or runs (6 px/frame) on 224 px frames, sampled every g-th source frame (g = 1, 2, 4, 8; 8 is
S=16, F=2): "auc gG", the worse of the two AUCs of p99 speed, freeze < walk and walk < run (1 = ordered
right, 0 = reversed: flow lost the fast disc), and "acc g1", leave-one-out nearest-centroid accuracy (3
classes) on the standardised magnitude block at g = 1 (direction blocks left out: directions are random).

    python -m bench.motion_cost              # from the repository root
    python -m bench.motion_cost --clips 8    # quicker
"""
from __future__ import annotations

import argparse
import platform
import time

import cv2
import numpy as np

from vad.features.motion import MotionConfig, MotionEncoder, motion_layout

CONFIGS = [MotionConfig(method=m, size=s) for m in ("dis", "dis_fast", "farneback") for s in (64, 96)]
SHAPES = {"224": (224, 224), "320x240": (240, 320)}  # (H, W)
SPEEDS = {"freeze": 0.0, "walk": 1.5, "run": 6.0}  # px per source frame at 224 px
GAPS = (1, 2, 4, 8)  # source frames between sampled frames


def textured_clip(rng: np.random.Generator, frames: int, shape: tuple[int, int], speed: float = 0.0,
                  step: int = 1) -> np.ndarray:
    """``(F, H, W, 3)`` uint8: a textured disc moving ``speed`` px per source frame in a random direction."""
    h, w = shape

    def texture(sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), sigma)

    background, pattern = texture(2.0) * 0.6 + 40, texture(1.5)
    radius = rng.uniform(0.07, 0.15) * min(h, w)
    yy, xx = np.mgrid[:h, :w]
    mask = (((yy - h / 2) ** 2 + (xx - w / 2) ** 2) <= radius**2).astype(np.float32)
    angle, speed = rng.uniform(0, 2 * np.pi), speed * rng.uniform(0.8, 1.2)
    out = []
    for t in range(frames):
        shift = speed * step * (t - (frames - 1) / 2)
        warp = np.float32([[1, 0, shift * np.cos(angle)], [0, 1, shift * np.sin(angle)]])
        m, p = cv2.warpAffine(mask, warp, (w, h)), cv2.warpAffine(pattern, warp, (w, h))
        img = background * (1 - m) + p * m + rng.normal(0, 2.0, (h, w))
        out.append(np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=-1))
    return np.stack(out)


def ms_per_snippet(encoder: MotionEncoder, frames: np.ndarray, repeats: int) -> float:
    """Best-of-``repeats`` milliseconds per snippet of ``MotionEncoder.snippets`` on ``(N, F, H, W, 3)``."""
    encoder.snippets(frames[:1])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.snippets(frames[1:], previous_frame=frames[0, -1])
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / (len(frames) - 1)


def auc(low: np.ndarray, high: np.ndarray) -> float:
    """P(high > low) + P(tie) / 2 over all pairs (Mann-Whitney AUC)."""
    diff = high[:, None] - low[None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


def separability(encoder: MotionEncoder, clips: dict[str, list[np.ndarray]], gap: int) -> tuple[float, float]:
    """(leave-one-out nearest-centroid accuracy on the magnitude block, worse adjacent-class AUC of p99)."""
    mag = motion_layout(encoder.config)["magnitude"]
    vecs = {k: np.stack([encoder.snippet(c, frame_gap=gap) for c in v])[:, mag] for k, v in clips.items()}
    x = np.concatenate(list(vecs.values())).astype(np.float64)
    y = np.repeat(np.arange(len(vecs)), [len(v) for v in vecs.values()])
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    correct = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        centroids = np.stack([x[keep & (y == c)].mean(0) for c in range(len(vecs))])
        correct += int(np.argmin(((centroids - x[i]) ** 2).sum(1)) == y[i])
    speed = {k: v[:, 3] for k, v in vecs.items()}  # p99
    return correct / len(x), min(auc(speed["freeze"], speed["walk"]), auc(speed["walk"], speed["run"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snippets", type=int, default=9, help="snippets per timing run (first is warm-up)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=20, help="clips per class for separability")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    timing = {(name, f): np.stack([textured_clip(rng, f, shape, 3.0) for _ in range(args.snippets)])
              for name, shape in SHAPES.items() for f in (2, 4)}
    sets = {gap: {k: [textured_clip(rng, 3, (224, 224), s, gap) for _ in range(args.clips)]
                  for k, s in SPEEDS.items()} for gap in GAPS}
    cols = [f"F{f}@{name}" for name, f in timing]
    print(f"motion level cost (ms/snippet, chained, 1 thread; {platform.processor() or platform.machine()}, "
          f"OpenCV {cv2.__version__}) and separability ({args.clips} clips/class, F=3)")
    header = f"{'method':<10}{'size':>5}" + "".join(f"{c:>12}" for c in cols)
    print(header + "".join(f"{f'auc g{g}':>8}" for g in GAPS) + f"{'acc g1':>8}")
    for cfg in CONFIGS:
        enc = MotionEncoder(cfg)
        costs = [ms_per_snippet(enc, frames, args.repeats) for frames in timing.values()]
        accs, aucs = zip(*(separability(enc, sets[g], g) for g in GAPS), strict=True)
        print(f"{cfg.method:<10}{cfg.size:>5}" + "".join(f"{c:>12.2f}" for c in costs)
              + "".join(f"{a:>8.2f}" for a in aucs) + f"{accs[0]:>8.2f}")


if __name__ == "__main__":
    main()
