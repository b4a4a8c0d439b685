"""Scaling of the whole default scoring model (``AnomalyModel`` forward, as ``vad score`` runs it) with N.

    python -m bench.model_scaling                   # default model, N = 256, 1024, 4096, 16384 + 13,500
    python -m bench.model_scaling --variant full    # attention="hop", qformer=True, for comparison
    python -m bench.model_scaling --profile 16384   # torch.profiler top ops of one forward at that N

Each N runs in a fresh subprocess (so memory high-water marks do not leak between sizes) that builds the model
with D = 512, F = 2 frames, P = 4 patches, M = 24 motion, K = 14 prompts (the ``vad extract`` defaults), random
features for one video, and times ``model(batch)`` in eval mode under ``torch.inference_mode()`` (what
``vad score`` does, see :func:`vad.engine.inference.score_features`). Reported:

- time: wall-clock seconds, the fastest of the timed runs after one warm-up; cpu: process CPU seconds of it;
- ratio: time(N) / time(N / 4), target <= 4.5 per step (linear cost gives ~4);
- peak RSS: the child's resident-set high-water mark (``getrusage``), Python + torch + inputs + forward,
  target < 1.5 GB; forward delta: that mark minus its value just before the first forward;
- the 2-hour video: 2 h x 30 fps / S = 16 = 13,500 snippets, measured directly and extrapolated linearly from
  N = 16384; target < 10 s on one CPU thread.

A missed target triggers a ``torch.profiler`` run at the size that missed it; the top ops are printed.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DIM, FRAMES, PATCHES, MOTION, PROMPTS = 512, 2, 4, 24, 14
SIZES = (256, 1024, 4096, 16384)
TWO_HOURS = 2 * 3600 * 30 // 16  # 13,500 snippets
RATIO_TARGET, RSS_TARGET_MB, TWO_HOUR_TARGET_S = 4.5, 1536.0, 10.0
VARIANTS = {"default": {}, "full": {"attention": "hop", "qformer": True}}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def build_model(variant: str = "default", device: str = "cpu"):
    """The scoring model of ``variant`` (random weights, eval mode) with the extraction defaults' widths."""
    import torch

    from vad.models.anomaly import AnomalyModel
    from vad.models.config import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(feature_dim=DIM, motion_dim=MOTION, num_prompts=PROMPTS, **VARIANTS[variant])
    return AnomalyModel(config).eval().to(device)


def random_batch(n: int, seed: int = 0, device: str = "cpu"):
    """Random features of one video with ``n`` snippets, every level the default model reads."""
    import torch

    from vad.data.batch import FeatureBatch

    gen = torch.Generator().manual_seed(seed)

    def unit(*shape: int) -> torch.Tensor:  # L2-normalised in place, like CLIP features (no transient copy)
        x = torch.randn(*shape, generator=gen)
        return x.div_(x.norm(dim=-1, keepdim=True))

    batch = FeatureBatch(clip=unit(1, n, DIM), node_mask=torch.ones(1, n, dtype=torch.bool),
                         frame=unit(1, n, FRAMES, DIM), patch=unit(1, n, PATCHES, DIM), text=unit(PROMPTS, DIM),
                         motion=torch.randn(1, n, MOTION, generator=gen))
    return batch.to(device)


def measure(n: int, variant: str, repeats: int, threads: int) -> dict:
    """Time and memory of one model forward at N = n (run inside the child process)."""
    import torch

    torch.set_num_threads(threads)
    model = build_model(variant)
    base = _maxrss_mb()  # Python + torch + vad imported, model built
    batch = random_batch(n, seed=n)
    before = _maxrss_mb()
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            out = model(batch)
            times.append((time.perf_counter() - start, time.process_time() - cpu_start))
    assert torch.isfinite(out.scores).all()
    peak = _maxrss_mb()
    best = min(times[1:])
    return {"n": n, "seconds": best[0], "cpu_seconds": best[1], "peak_mb": peak, "base_mb": base,
            "inputs_mb": before - base, "delta_mb": peak - before}


def windows(n: int, size: int, overlap: int) -> int:
    """LEGO windows a video of n snippets is cut into (1 = dense), as :func:`fusion.window_layout` counts them."""
    return 1 if n <= size else -(-(n - size) // (size - overlap)) + 1


def profile_ops(n: int, variant: str, threads: int, runs: int = 2) -> dict[str, float]:
    """Self CPU ms of each (op, input shape) in one forward at N = n, best of ``runs`` profiled runs after a
    warm-up; dimensions equal to n are written ``N`` so the same op matches across sizes."""
    import re

    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    model = build_model(variant)
    batch = random_batch(n, seed=n)
    best: dict[str, float] = {}
    with torch.inference_mode():
        model(batch)
        for run in range(runs):
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                model(batch)
            ops: dict[str, float] = {}
            for event in prof.key_averages(group_by_input_shape=True):
                shape = re.sub(rf"\b{n}\b", "N", str(event.input_shapes[0]) if event.input_shapes else "")
                key = f"{event.key} {shape}".strip()
                ops[key] = ops.get(key, 0.0) + event.self_cpu_time_total / 1e3
            best = ops if run == 0 else {k: min(v, best.get(k, v)) for k, v in ops.items()}
    return best


def print_profiles(sizes: list[int], variant: str, threads: int, top: int) -> None:
    """Profile each size in a fresh process; print the top ops (by self CPU time at the largest) side by side,
    with the time ratio of each size to the one before it."""
    profiles = {n: json.loads(_child(["--profile-child", str(n), "--variant", variant, "--threads", str(threads)])
                              .strip().splitlines()[-1]) for n in sizes}
    by_op = {n: {} for n in sizes}  # the same profiles summed over shapes: dense and windowed ops line up
    for n, ops in profiles.items():
        for key, ms in ops.items():
            by_op[n][key.split(" ", 1)[0]] = by_op[n].get(key.split(" ", 1)[0], 0.0) + ms
    _table(profiles, sizes, top, "op [first input shape, N = video length]", total=True)
    print()
    _table(by_op, sizes, max(4, top // 2), "op (all shapes)", total=False)


def _table(profiles: dict[int, dict[str, float]], sizes: list[int], top: int, header: str, total: bool) -> None:
    """Rows: the ``top`` keys by time at the largest size; columns: ms per size and the ratio to the size before."""
    last = profiles[sizes[-1]]
    keys = sorted(last, key=last.get, reverse=True)[:top]
    width = max(len(header), *(len(k) for k in keys))
    print(f"{header:<{width}} {'ms @' + str(sizes[0]):>10}"
          + "".join(f" {'ms @' + str(n):>10} {'ratio':>6}" for n in sizes[1:]))
    for key in [*keys, *(["total"] if total else [])]:
        vals = [sum(profiles[n].values()) if key == "total" else profiles[n].get(key, 0.0) for n in sizes]
        cells = [f"{vals[0]:>10.1f}"]
        for prev, val in zip(vals, vals[1:]):
            cells.append(f" {val:>10.1f} " + (f"{val / prev:>6.2f}" if prev > 0 else f"{'-':>6}"))
        print(f"{key:<{width}} " + "".join(cells))


def _child(args: list[str]) -> str:
    cmd = [sys.executable, "-m", "bench.model_scaling", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[1:])} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="default",
                        help="default: the shipped model; full: + hop attention and MM-QFormer")
    parser.add_argument("--quick", action="store_true", help="N up to 4096, two timed runs per N, no 2-hour row")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the list of N")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per N (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the targets assume 1)")
    parser.add_argument("--profile", type=int, nargs="+", metavar="N",
                        help="print torch.profiler's top ops at these N (fresh process each) and exit")
    parser.add_argument("--top", type=int, default=12, help="profiler rows")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.variant, repeats, args.threads)))
        return 0
    if args.profile_child is not None:
        print(json.dumps(profile_ops(args.profile_child, args.variant, args.threads)))
        return 0
    if args.profile:
        print_profiles(sorted(args.profile), args.variant, args.threads, args.top)
        return 0

    sizes = args.sizes or (list(SIZES[:3]) if args.quick else list(SIZES))
    extra = [] if args.quick or args.sizes else [TWO_HOURS]
    config = build_model(args.variant).config
    lego = config.lego
    print(f"AnomalyModel forward ({args.variant}: arch {config.arch}, fusion {config.fusion}, readout "
          f"{config.readout}, attention {config.attention}, qformer {config.qformer}, smoothing {config.smoothing}, "
          f"members {config.members}, "
          f"LEGO window {lego.window_size}/{lego.window_overlap}), eval + inference_mode, B=1, D={DIM}, F={FRAMES}, "
          f"P={PATCHES}, M={MOTION}, K={PROMPTS}, {args.threads} thread(s), best of {repeats} after 1 warm-up, "
          f"fresh process per N; memory in MiB")
    print(f"{'N':>7} {'windows':>7} {'time s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6} {'peak RSS':>9} "
          f"{'base':>6} {'inputs':>7} {'fwd delta':>10}")
    results: dict[int, dict] = {}
    ratio_misses: list[int] = []
    misses: list[str] = []
    common = ["--variant", args.variant, "--repeats", str(repeats), "--threads", str(args.threads)]
    for n in [*sizes, *extra]:
        row = json.loads(_child(["--child", str(n), *common]).strip().splitlines()[-1])
        results[n] = row
        ratio = cpu_ratio = "-"
        if n % 4 == 0 and n // 4 in results:
            r = row["seconds"] / results[n // 4]["seconds"]
            ratio, cpu_ratio = f"{r:.2f}", f"{row['cpu_seconds'] / results[n // 4]['cpu_seconds']:.2f}"
            if r > RATIO_TARGET:
                ratio_misses.append(n)
                misses.append(f"time({n})/time({n // 4}) = {r:.2f}")
        if row["peak_mb"] >= RSS_TARGET_MB:
            misses.append(f"peak RSS at N={n} = {row['peak_mb']:.0f} MiB")
        print(f"{n:>7} {windows(n, lego.window_size, lego.window_overlap):>7} {row['seconds']:>8.3f} {ratio:>6} "
              f"{row['cpu_seconds']:>8.3f} {cpu_ratio:>6} {row['peak_mb']:>9.0f} {row['base_mb']:>6.0f} "
              f"{row['inputs_mb']:>7.0f} {row['delta_mb']:>10.0f}", flush=True)
    print("base: RSS after importing torch + vad and building the model; inputs: the random features; fwd delta: "
          "what the forward added to the high-water mark")
    largest = max(sizes)
    extrapolated = results[largest]["seconds"] * TWO_HOURS / largest
    measured = results.get(TWO_HOURS, {}).get("seconds")
    head = measured if measured is not None else extrapolated
    print(f"2-hour video (2 h x 30 fps / S=16 = {TWO_HOURS:,} snippets): "
          + (f"measured {measured:.2f} s, " if measured is not None else "")
          + f"extrapolated linearly from N={largest}: {extrapolated:.2f} s (target < {TWO_HOUR_TARGET_S:.0f} s on "
          f"{args.threads} thread(s))")
    if head >= TWO_HOUR_TARGET_S:
        misses.append(f"2-hour head {head:.2f} s")
    print(f"targets: time ratio <= {RATIO_TARGET} per 4x step, peak RSS < {RSS_TARGET_MB:.0f} MiB (1.5 GiB), "
          f"2-hour head < {TWO_HOUR_TARGET_S:.0f} s: " + ("all met" if not misses else "MISSED " + "; ".join(misses)))
    if ratio_misses:
        steps = sorted({m for n in ratio_misses for m in (n // 4, n)})
        print(f"\ntorch.profiler, one forward per N (self CPU ms, best of 2 after a warm-up, fresh process each), "
              f"the top ops at N={steps[-1]}:")
        print_profiles(steps, args.variant, args.threads, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
