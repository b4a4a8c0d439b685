"""Benchmark: HopDiffusedAttention sparse path, time and peak memory versus N, new vs old implementation.

Graph: per node, its (degree - 2) nearest neighbours by cosine similarity of a 32-d random projection of
the features (self and temporal neighbours excluded) plus the temporal chain i-1, i+1: degree ≈ 16, like a
snippet graph (k-NN + time). One forward pass of one layer (B = 1, D = 512, 8 heads, K = 2) under
``torch.no_grad``; graph construction is not timed.

Two implementations run on the same graphs, each N in fresh subprocesses:

* ``new``: the layer as it is in :mod:`graph4mm` (per-head gather kernels, row-chunked node-wise block);
* ``old``: :func:`legacy_forward`, the implementation before that change (one gather per neighbour slot
  over all heads, whole-graph FFN), kept here only as the reference the speed-up is measured against.

Time: median (and best) wall time of the timed forward passes, and median CPU time (``process_time``,
user + sys). With one thread the two agree on an idle machine; on a shared one the CPU time leaves out
the time other processes hold the core, so its N-to-4N ratios are the steadier ones (cache and memory
bandwidth are still shared).

Memory: each run reports its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) and the growth of that peak
during the forward passes over the RSS just before them ("fwd Δ").

Usage, from the repository root: ``python -m bench.hop_attention [--quick] [--threads T] [--impl new]``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = (256, 1024, 4096, 16384)
QUICK_SIZES = (256, 1024, 4096)
IMPLS = ("old", "new")


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


def legacy_forward(layer, x, neighbors, neighbor_mask):
    """The layer's sparse forward pass before the per-head kernels (reference only; no node_mask).

    Scores and each propagation loop over the S neighbour slots, gathering a ``(B·N, D)`` tensor of all
    heads per slot (``index_select`` into a reused buffer); the FFN runs on the whole graph at once.
    Shapes: x ``(B, N, D)``, neighbors / neighbor_mask ``(B, N, S)`` → ``(B, N, D)``.
    """
    import torch

    from graph4mm import ops

    structure = ops.sparse_structure(neighbors, neighbor_mask)
    b, n, _ = x.shape
    rows = (structure.neighbors + torch.arange(b)[:, None, None] * n).permute(2, 0, 1).reshape(-1, b * n)

    def node_major(h):  # (B, H, N, Dh) → (B·N, H·Dh)
        return h.transpose(1, 2).reshape(b * n, -1)

    def scores(q, k):  # (B, H, N, Dh) → (B, H, N, S)
        nh, dh = q.shape[1], q.shape[3]
        qn, kn = node_major(q).view(b * n, nh, dh), node_major(k)
        buffer = torch.empty_like(kn)
        cols = [torch.linalg.vecdot(qn, torch.index_select(kn, 0, r, out=buffer).view(b * n, nh, dh))
                for r in rows]
        return torch.stack(cols, dim=-1).view(b, n, nh, -1).permute(0, 2, 1, 3)

    def propagate(t, h):  # (B, H, N, S), (B, H, N, Dh) → (B, H, N, Dh)
        nh, dh = h.shape[1], h.shape[3]
        tn = t.permute(0, 2, 1, 3).reshape(b * n, nh, -1)
        hn = node_major(h)
        buffer = torch.empty_like(hn)
        out = h.new_zeros(b * n, nh, dh)
        for s, r in enumerate(rows):
            out.addcmul_(tn[..., s, None], torch.index_select(hn, 0, r, out=buffer).view(b * n, nh, dh))
        return out.view(b, n, nh, dh).transpose(1, 2)

    q, k, v = (ops.split_heads(proj(x), layer.heads) for proj in (layer.q_proj, layer.k_proj, layer.v_proj))
    t = ops.masked_softmax(scores(q, k) / math.sqrt(q.shape[-1]), structure.mask[:, None])
    theta = ops.ppr_coefficients(layer.config.K, layer.config.alpha)
    attn, h = theta[0] * v, v
    for coef in theta[1:]:
        h = propagate(t, h)
        attn = attn + coef * h
    hid = layer.norm1(x + layer.dropout(layer.o_proj(ops.merge_heads(attn))))
    return layer.norm2(hid + layer.dropout(layer.ffn(hid)))


def _current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def worker(impl: str, n: int, dim: int, heads: int, degree: int, K: int, repeats: int, threads: int) -> dict:
    """Run in a subprocess: build the graph, time the forward pass of ``impl``, report peak RSS."""
    import torch

    from graph4mm import HopDiffusedAttention, HopDiffusedAttentionConfig

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer = HopDiffusedAttention(HopDiffusedAttentionConfig(dim=dim, heads=heads, K=K)).eval()
    x = torch.randn(1, n, dim)
    neighbors, mask = knn_temporal_graph(x, degree)
    if impl == "new":
        def forward():
            return layer(x, neighbors=neighbors, neighbor_mask=mask)
    else:
        def forward():
            return legacy_forward(layer, x, neighbors, mask)
    rss_before = _current_rss_mb()
    times, cpu_times = [], []
    with torch.no_grad():
        out = forward()  # warm-up
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        fingerprint = float((out.double() * probe).sum())  # compared across implementations
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            out = forward()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    assert torch.isfinite(out).all()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux → MiB
    return {"impl": impl, "n": n, "edges": int(mask.sum()), "seconds": statistics.median(times),
            "best_seconds": min(times), "cpu_seconds": statistics.median(cpu_times),
            "peak_rss_mb": peak, "forward_delta_mb": max(0.0, peak - rss_before), "fingerprint": fingerprint,
            "numel": out.numel()}


def _run_worker(impl: str, n: int, args: argparse.Namespace, repeats: int) -> dict:
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "bench.hop_attention", "--worker", str(n), "--impl", impl,
           "--dim", str(args.dim), "--heads", str(args.heads), "--degree", str(args.degree),
           "--K", str(args.K), "--repeats", str(repeats), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    if proc.returncode:
        raise RuntimeError(f"{impl} N={n}: worker failed\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(sizes, impls, results) -> None:
    """Print 4×-step time ratios per implementation (wall and CPU time) and the speed-up at each N."""
    for impl in impls:
        for small, large in itertools.pairwise(sizes):
            if large == 4 * small:
                wall = results[impl, large]["seconds"] / results[impl, small]["seconds"]
                cpu = results[impl, large]["cpu_seconds"] / results[impl, small]["cpu_seconds"]
                print(f"{impl}: time({large})/time({small}) = {wall:.2f} wall, {cpu:.2f} CPU  (linear: 4.00)")
    if len(impls) == 2:
        for n in sizes:
            old, new = results["old", n], results["new", n]
            # Σ out·probe with a fixed Gaussian probe: differs by O(√numel) unless outputs agree elementwise
            same = abs(old["fingerprint"] - new["fingerprint"]) < 1e-3 * math.sqrt(new["numel"])
            print(f"N={n}: new is {old['seconds'] / new['seconds']:.2f}x faster than old "
                  f"({new['seconds'] * 1e3:.0f} vs {old['seconds'] * 1e3:.0f} ms wall, "
                  f"{old['cpu_seconds'] / new['cpu_seconds']:.2f}x in CPU time; "
                  f"outputs {'agree' if same else 'DIFFER'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N up to 4096 and one timed repeat")
    parser.add_argument("--sizes", type=int, nargs="+", help="node counts (default 256 1024 4096 16384)")
    parser.add_argument("--impl", choices=(*IMPLS, "both"), default="both", help="which implementation(s)")
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
        impl = "new" if args.impl == "both" else args.impl
        print(json.dumps(worker(impl, args.worker, args.dim, args.heads, args.degree, args.K, repeats,
                                args.threads)))
        return 0

    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    impls = IMPLS if args.impl == "both" else (args.impl,)
    print(f"HopDiffusedAttention sparse path: D={args.dim}, heads={args.heads}, K={args.K}, "
          f"k-NN + temporal chain degree {args.degree}, B=1, no_grad, {args.threads} thread(s), "
          f"median (and best) of {repeats}; CPU = process time (user + sys); memory = peak RSS of a fresh "
          f"subprocess per N and implementation")
    print(f"{'impl':>4} {'N':>7} {'edges':>9} {'time ms':>9} {'best ms':>8} {'CPU ms':>8} {'ns/edge/D':>10} "
          f"{'peak RSS MB':>12} {'fwd Δ MB':>9}")
    results = {}
    for n in sizes:
        for impl in impls:
            try:
                row = _run_worker(impl, n, args, repeats)
            except RuntimeError as err:
                print(err, file=sys.stderr)
                return 1
            results[impl, n] = row
            per_edge = row["seconds"] / (row["edges"] * args.dim) * 1e9
            print(f"{impl:>4} {n:>7} {row['edges']:>9} {row['seconds'] * 1e3:>9.1f} "
                  f"{row['best_seconds'] * 1e3:>8.1f} {row['cpu_seconds'] * 1e3:>8.1f} {per_edge:>10.3f} "
                  f"{row['peak_rss_mb']:>12.0f} "
                  f"{row['forward_delta_mb']:>9.0f}", flush=True)
    _report(sizes, impls, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
