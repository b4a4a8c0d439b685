"""Scaling of the LEGO graph encoder (fusion + propagation) with the number of snippets N.

    python -m bench.fusion_scaling            # N = 256, 1024, 4096, 16384
    python -m bench.fusion_scaling --quick    # N = 256, 1024, 4096, three timed runs each

Each N runs in a fresh subprocess (so memory high-water marks do not leak between sizes) that builds
``LEGOGraphEncoder`` with D = 512 and four levels (clip; frame F = 4; patch P = 4; text K = 8 prompts),
creates random features for one video, and times ``encoder(levels, x)`` in eval mode under ``torch.no_grad()``
(the scoring path; training uses short resampled videos). Reported:

- time: wall-clock seconds, the fastest of the timed runs after one warm-up (the least disturbed by other
  processes);
- cpu: CPU seconds of the process (``time.process_time``, all threads) for that fastest run; on a shared
  machine this is steadier than wall time, especially with ``--threads 1``;
- ratios: time(N) / time(N / 4) for wall and CPU time, the target is <= 4.5 (linear cost gives ~4);
- peak RSS: the process's resident-set high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) at the
  end, i.e. everything: Python, torch, inputs and the forward's transient buffers;
- forward delta: that high-water mark minus its value just before the first forward, i.e. what the forward
  itself added on top of the inputs (target for the whole process at N = 16384: < 2 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DIM, FRAMES, PATCHES, PROMPTS = 512, 4, 4, 8


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def measure(n: int, repeats: int, threads: int) -> dict:
    """Time and memory of one encoder forward at N = n (run inside the child process)."""
    import torch

    from fusion import LEGOConfig, LEGOGraphEncoder

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    encoder = LEGOGraphEncoder(LEGOConfig(in_dim=DIM, out_dim=DIM)).eval()
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(1, n, DIM, generator=gen)
    levels = {
        "clip": x,
        "frame": torch.randn(1, n, FRAMES, DIM, generator=gen),
        "patch": torch.randn(1, n, PATCHES, DIM, generator=gen),
        "text": torch.randn(PROMPTS, DIM, generator=gen),
    }
    before = _maxrss_mb()
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            out = encoder(levels, x)
            times.append((time.perf_counter() - start, time.process_time() - cpu_start))
    assert torch.isfinite(out.nodes).all()
    peak = _maxrss_mb()
    return {
        "n": n,
        "seconds": min(times[1:])[0],
        "cpu_seconds": min(times[1:])[1],
        "peak_mb": peak,
        "delta_mb": peak - before,
        "windowed": out.windowed,
    }


def parameter_counts() -> tuple[int, int, int]:
    """(LEGOFusion parameters, whole encoder parameters, feature-concatenation baseline parameters)."""
    from torch import nn

    from fusion import LEGOConfig, LEGOGraphEncoder

    encoder = LEGOGraphEncoder(LEGOConfig(in_dim=DIM, out_dim=DIM))
    fusion = sum(p.numel() for p in encoder.fusion.parameters())
    total = sum(p.numel() for p in encoder.parameters())
    # Feature-space fusion of the same four levels: concatenate [clip, mean frame, mean patch, text-attended]
    # (4 * D) and project back to D_out, the smallest concatenation model that yields D_out-wide nodes.
    baseline = sum(p.numel() for p in nn.Linear(4 * DIM, DIM).parameters())
    return fusion, total, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N up to 4096, three timed runs per N")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the list of N")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per N (after one warm-up)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: reproducible on a shared machine)"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    if args.child is not None:
        print(json.dumps(measure(args.child, repeats, args.threads)))
        return

    sizes = args.sizes or ([256, 1024, 4096] if args.quick else [256, 1024, 4096, 16384])
    print(
        f"LEGOGraphEncoder forward, eval + no_grad, B=1, D={DIM}, F={FRAMES}, P={PATCHES}, K={PROMPTS}, "
        f"4 graphs, P=Q=2, window 256/64, {args.threads} thread(s), best of {repeats} after 1 warm-up"
    )
    print(
        f"{'N':>7} {'mode':>9} {'time s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6} "
        f"{'peak RSS MB':>12} {'forward delta MB':>17}"
    )
    previous: dict[int, dict] = {}
    for n in sizes:
        cmd = [
            sys.executable,
            "-m",
            "bench.fusion_scaling",
            "--child",
            str(n),
            "--repeats",
            str(repeats),
            "--threads",
            str(args.threads),
        ]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                           cwd=Path(__file__).resolve().parents[1]).stdout.strip())
        previous[n] = result
        ratio, cpu_ratio = "-", "-"
        if n // 4 in previous:
            ratio = f"{result['seconds'] / previous[n // 4]['seconds']:.2f}"
            cpu_ratio = f"{result['cpu_seconds'] / previous[n // 4]['cpu_seconds']:.2f}"
        mode = "windowed" if result["windowed"] else "dense"
        print(
            f"{n:>7} {mode:>9} {result['seconds']:>8.3f} {ratio:>6} {result['cpu_seconds']:>8.3f} "
            f"{cpu_ratio:>6} {result['peak_mb']:>12.0f} {result['delta_mb']:>17.0f}"
        )
    fusion, total, baseline = parameter_counts()
    print(
        f"parameters: LEGOFusion (A matrices) {fusion:,}; whole encoder (A + W + b) {total:,}; "
        f"feature-concatenation baseline Linear(4*{DIM} -> {DIM}) {baseline:,}"
    )


if __name__ == "__main__":
    main()
