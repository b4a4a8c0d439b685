"""One-class mode at scale: fit time, memory size and query time over hours of synthetic normal footage.

At S=16 frames per snippet and 30 fps an hour of video is 22,500 snippets; 100 hours are 2.25 M snippets, and
with the frame (F=2) and patch (P=4) levels 18 M vectors of width 512 (37 GB as float32). The fit streams them
through bounded per-level reservoirs (``memory.pool``) and reduces each to ``memory.size`` vectors, so memory
while fitting, the model and its query time stay fixed whatever the hours; only the streaming pass grows (linearly).

Synthetic footage: 5-minute videos, each a scene (random base) whose snippets walk on a low-dimensional manifold
plus noise drawn from a fixed bank (cheap to make, so the bench times the fit, not the generator).

    python -m bench.oneclass                          # 1, 10 and 100 hours, all four levels
    python -m bench.oneclass --hours 100 --levels clip motion
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vad.data.dataset import Dataset, VideoRecord
from vad.engine.fit_normal import FitNormalConfig, NormalFitter
from vad.engine.inference import score_features
from vad.features.store import VideoFeatures, VideoMeta
from vad.models.config import MemoryConfig
from vad.models.memory import knn_distance

SNIPPETS_PER_HOUR = 22_500  # 30 fps * 3600 s / 16 frames per snippet
D, M, F, P = 512, 24, 2, 4


class Footage:
    """Deterministic synthetic normal videos (see the module doc)."""

    def __init__(self, levels: tuple[str, ...], seed: int = 0) -> None:
        self.levels, self.rng = levels, np.random.default_rng(seed)
        self.bank = self.rng.normal(size=(65_536, D)).astype(np.float32) * 0.05
        self.basis = self.rng.normal(size=(8, D)).astype(np.float32) / np.sqrt(D)

    def video(self, name: str, n: int) -> VideoFeatures:
        """One video of ``n`` snippets."""
        rng = self.rng
        z = np.cumsum(rng.normal(scale=0.2, size=(n, 8)), 0).astype(np.float32)
        clip = rng.normal(size=D).astype(np.float32) + z @ self.basis + self.bank[rng.integers(0, 65_536, n)]

        def noisy(count: int) -> np.ndarray:
            return clip[:, None] + self.bank[rng.integers(0, 65_536, n * count)].reshape(n, count, D) * 0.2

        meta = VideoMeta(name=name, fps=30.0, num_frames=n * 16, snippet_len=16, backbone="synthetic")
        return VideoFeatures(clip, meta, frame=noisy(F) if "frame" in self.levels else None,
                             patch=noisy(P) if "patch" in self.levels else None,
                             motion=np.abs(z[:, :3] @ self.rng.normal(size=(3, M))).astype(np.float32)
                             if "motion" in self.levels else None)

    def stream(self, hours: float, minutes: float = 5.0) -> Iterator[VideoFeatures]:
        """``hours`` of footage as videos of ``minutes`` each."""
        per_video = int(SNIPPETS_PER_HOUR * minutes / 60)
        for i in range(max(1, round(hours * 60 / minutes))):
            yield self.video(f"train_{i:05d}", per_video)


def knn_backends(memory: torch.Tensor, queries: torch.Tensor, k: int) -> dict[str, float]:
    """Seconds of exact k-NN search, torch chunked vs faiss's flat index (when faiss is installed)."""
    out = {}
    started = time.perf_counter()
    knn_distance(queries, memory, k)
    out["torch_s"] = time.perf_counter() - started
    try:
        import faiss
    except ImportError:
        return out
    index = faiss.IndexFlatL2(memory.shape[1])
    index.add(memory.numpy())
    started = time.perf_counter()
    index.search(queries.numpy(), k)
    out["faiss_s"] = time.perf_counter() - started
    return out


def run(hours: float, levels: tuple[str, ...], memory: MemoryConfig) -> dict:
    """Fit on ``hours`` of footage, then time queries on a one-hour video, graph terms on and off."""
    footage = Footage(levels)
    val = [footage.video(f"val_{i}", SNIPPETS_PER_HOUR // 12) for i in range(4)]  # 20 minutes held out
    ds = Dataset({v.meta.name: VideoRecord(v, 0, "Normal", "val") for v in val}, None, [])
    ds.records["train_seed"] = VideoRecord(footage.video("train_seed", 16), 0, "Normal", "train")
    fitter = NormalFitter(ds, FitNormalConfig(memory=memory, levels=levels, device="cpu"), progress=False)
    started = time.perf_counter()
    stats = fitter.build_memory(footage.stream(hours))
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    fitter.fit_scale(stats)
    calib_s = time.perf_counter() - started
    model = fitter.model
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    hour = footage.video("query", SNIPPETS_PER_HOUR)

    timings = {}
    for graph in (False, True):
        cfg = model.config
        model.head.config = replace(cfg, graph_terms=replace(cfg.graph_terms, enabled=graph))
        started = time.perf_counter()
        score_features(model, hour, None, ds.levels())
        timings[f"query_1h_graph_{'on' if graph else 'off'}_s"] = round(time.perf_counter() - started, 2)
    queries = torch.from_numpy(hour.clip)
    backends = knn_backends(model.head.memory("clip"), queries, memory.k)
    return {"hours": hours, "snippets": int(stats["seen"]["clip"]), "videos": stats["videos"],
            "levels": list(levels), "vectors_seen": stats["seen"], "memory_kept": stats["kept"],
            "fit_stream_s": round(fit_s, 1), "fit_calibration_s": round(calib_s, 1),
            "model_mb": round(size / 2**20, 1), **timings,
            "knn_clip_1h_torch_s": round(backends["torch_s"], 2),
            "knn_clip_1h_faiss_s": round(backends["faiss_s"], 2) if "faiss_s" in backends else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, nargs="+", default=[1, 10, 100])
    ap.add_argument("--levels", nargs="+", default=["clip", "frame", "patch", "motion"])
    ap.add_argument("--memory-size", type=int, default=MemoryConfig().size)
    ap.add_argument("--pool", type=int, default=MemoryConfig().pool)
    ap.add_argument("--reduce", default=MemoryConfig().reduce)
    ap.add_argument("--out", type=Path, default=Path("bench/out/oneclass.json"))
    args = ap.parse_args()
    memory = MemoryConfig(size=args.memory_size, pool=args.pool, reduce=args.reduce)
    rows = []
    for hours in args.hours:
        rows.append(run(hours, tuple(args.levels), memory))
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print("| hours | snippets | fit (stream + calibrate) s | model MB | query 1 h, graph off / on s | "
          "k-NN clip 1 h torch / faiss s | peak RSS MB |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['hours']:g} | {r['snippets']:,} | {r['fit_stream_s']} + {r['fit_calibration_s']} | "
              f"{r['model_mb']} | {r['query_1h_graph_off_s']} / {r['query_1h_graph_on_s']} | "
              f"{r['knn_clip_1h_torch_s']} / {r['knn_clip_1h_faiss_s']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
