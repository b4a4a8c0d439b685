"""Benchmark: HopDiffusedAttention sparse path, time and peak memory versus N.

Graph: per node, its (degree - 2) nearest neighbours by cosine similarity of a 32-d random projection of
the features (self and temporal neighbours excluded) plus the temporal chain i-1, i+1: degree ≈ 16, like a
snippet graph (k-NN + time). One forward pass of one layer (B = 1, D = 512, 8 heads, K = 2) under
``torch.no_grad``; graph construction is not timed.

Memory: each N runs in a fresh subprocess; it reports its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``)
and the growth of that peak during the forward passes over the RSS just before them ("fwd Δ").

Usage: ``python bench/hop_attention.py [--quick] [--threads T]``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = (256, 1024, 4096, 16384)
QUICK_SIZES = (256, 1024, 4096)


def knn_temporal_graph(x, degree: int, proj_dim: int = 32, seed: int = 0):
    """Neighbour list (1, N, degree) and mask: k-NN in a random projection + temporal chain (i-1, i+1)."""
    import torch

    n = x.shape[1]
    gen = torch.Generator().manual_seed(seed)
    z = x[0] @ torch.randn(x.shape[-1], proj_dim, generator=gen)
    z = torch.nn.functional.normalize(z, dim=-1)
    k = max(0, min(degree - 2, n - 3))
    idx = torch.arange(n)
    knn = torch.empty(n, k, dtype=torch.long)
    chunk = max(1, (1 << 22) // n)  # ~16 MB of similarities at a time
    for start in range(0, n, chunk):
        rows = idx[start:start + chunk]
        sim = z[rows] @ z.T  # (chunk, N)
        for off in (-1, 0, 1):  # exclude self and temporal neighbours (they come from the chain)
            cols = (rows + off).clamp(0, n - 1)
            sim[torch.arange(len(rows)), cols] = float("-inf")
        knn[rows] = sim.topk(k, dim=-1).indices
    chain = torch.stack([(idx - 1).clamp_min(0), (idx + 1).clamp_max(n - 1)], dim=1)
    chain_mask = torch.stack([idx > 0, idx < n - 1], dim=1)
    neighbors = torch.cat([chain, knn], dim=1)[None]
    mask = torch.cat([chain_mask, torch.ones(n, k, dtype=torch.bool)], dim=1)[None]
    return neighbors, mask


def _current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def worker(n: int, dim: int, heads: int, degree: int, K: int, repeats: int, threads: int) -> dict:
    """Run in a subprocess: build the graph, time the forward pass, report peak RSS."""
    import torch

    from graph4mm import HopDiffusedAttention, HopDiffusedAttentionConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = HopDiffusedAttention(HopDiffusedAttentionConfig(dim=dim, heads=heads, K=K)).eval()
    x = torch.randn(1, n, dim)
    neighbors, mask = knn_temporal_graph(x, degree)
    rss_before = _current_rss_mb()
    times = []
    with torch.no_grad():
        layer(x, neighbors=neighbors, neighbor_mask=mask)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = layer(x, neighbors=neighbors, neighbor_mask=mask)
            times.append(time.perf_counter() - t0)
    assert torch.isfinite(out).all()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux → MiB
    return {"n": n, "edges": int(mask.sum()), "seconds": statistics.median(times),
            "peak_rss_mb": peak, "forward_delta_mb": max(0.0, peak - rss_before)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N up to 4096 and one timed repeat")
    parser.add_argument("--sizes", type=int, nargs="+", help="node counts (default 256 1024 4096 16384)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--degree", type=int, default=16)
    parser.add_argument("--K", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per N (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each worker")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.dim, args.heads, args.degree, args.K, repeats, args.threads)))
        return 0

    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    root = Path(__file__).resolve().parent.parent
    print(f"HopDiffusedAttention sparse path: D={args.dim}, heads={args.heads}, K={args.K}, "
          f"k-NN + temporal chain degree {args.degree}, B=1, no_grad, {args.threads} thread(s), "
          f"median of {repeats}; memory = peak RSS of a fresh subprocess per N")
    print(f"{'N':>7} {'edges':>9} {'time ms':>9} {'ns/edge/D':>10} {'peak RSS MB':>12} {'fwd Δ MB':>9}")
    rows = []
    for n in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n), "--dim", str(args.dim),
               "--heads", str(args.heads), "--degree", str(args.degree), "--K", str(args.K),
               "--repeats", str(repeats), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
        if proc.returncode:
            print(f"N={n}: worker failed\n{proc.stderr}", file=sys.stderr)
            return 1
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        per_edge = row["seconds"] / (row["edges"] * args.dim) * 1e9
        print(f"{n:>7} {row['edges']:>9} {row['seconds'] * 1e3:>9.1f} {per_edge:>10.3f} "
              f"{row['peak_rss_mb']:>12.0f} {row['forward_delta_mb']:>9.0f}", flush=True)
    for small, large in itertools.pairwise(rows):
        if large["n"] == 4 * small["n"]:
            print(f"time({large['n']})/time({small['n']}) = {large['seconds'] / small['seconds']:.2f}  "
                  f"(linear: 4.00; edges ratio {large['edges'] / small['edges']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
