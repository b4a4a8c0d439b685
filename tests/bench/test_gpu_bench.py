"""``bench.gpu``: the CPU quick run reports every measurement; without CUDA it says so and exits 0."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_bench(*args: str, hide_cuda: bool = False) -> subprocess.CompletedProcess:
    """``python -m bench.gpu ARGS`` from the repository root, 1 torch thread (and no GPU if ``hide_cuda``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if hide_cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run([sys.executable, "-m", "bench.gpu", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_quick_cpu_run_reports_every_measurement() -> None:
    """``--device cpu --quick``: one JSON line with the extraction rows, real-time factor, memory and head."""
    proc = _run_bench("--device", "cpu", "--quick")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["cuda"] is False
    assert {"device", "backbone", "amp", "video", "extraction", "frames_per_s", "realtime_factor_30fps",
            "memory_peak_mb", "head", "snippet_len", "frames_per_snippet"} <= set(out)
    assert (out["snippet_len"], out["frames_per_snippet"]) == (16, 4)
    assert [r["batch_snippets"] for r in out["extraction"]] == [2, 4, 8]  # one row each: auto = 1 thread on CPU
    assert {r["decode_workers"] for r in out["extraction"]} == {1}
    for row in out["extraction"]:
        assert row["batch_frames"] == 4 * row["batch_snippets"]
        for key in ("frames_per_s", "encoder_frames_per_s", "realtime_factor_30fps", "seconds", "memory_peak_mb"):
            assert row[key] > 0, (key, row)
    assert out["frames_per_s"] == max(r["frames_per_s"] for r in out["extraction"])
    assert out["realtime_factor_30fps"] > 0 and out["memory_peak_mb"] > 0
    assert out["video"]["snippets"] == 24 and out["video"]["frames"] == 24 * 16
    assert out["head"]["snippets"] == 256
    assert out["head"]["seconds"] > 0 and out["head"]["memory_peak_mb"] > 0


def test_no_cuda_prints_reason_and_exits_zero() -> None:
    """The default (CUDA) run on a machine without CUDA: ``{"cuda": false, "reason": ...}`` and exit status 0."""
    proc = _run_bench(hide_cuda=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip()) == {"cuda": False, "reason": "no CUDA device"}
