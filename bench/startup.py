"""Start-up time of every ``vad`` verb: ``vad VERB --help``, and the verbs that do a job end to end on tiny data.

Each command runs in a fresh process (``python -m apps.cli``, as the ``vad`` script does), from this checkout:

* warm: the median wall time of ``--repeats`` runs (page cache warm, ``--help`` answered from its help cache);
* cold: one run after dropping the OS page cache (``/proc/sys/vm/drop_caches``, needs root; the table says when
  it could not be dropped) and, for ``--help``, with an empty help cache (the first ``--help`` after an install);
* heavy: the heavy modules the command imported (``python -X importtime``, one more run) with their cumulative
  import time, from torch, open_clip, gradio, matplotlib, cv2, decord and sklearn.

The end-to-end jobs run on data made here, as the tests make theirs: a 12-video synthetic benchmark, a random
tiny backbone (``vadgraph-tiny-ViT``) saved as a checkpoint and loaded through ``--pretrained PATH``, its features
and a tiny model trained for two epochs; ``score`` scores one short clip of it (3 to 4 s). ``serve``, ``watch``
and ``demo`` run until stopped (or for minutes), so only their ``--help`` is timed.

    python -m bench.startup                 # about 3 minutes on 2 CPU cores
    python -m bench.startup --repeats 9
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open_clip", "gradio", "matplotlib", "cv2", "decord", "sklearn")
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)\s*$", re.MULTILINE)


def drop_page_cache() -> bool:
    """Drop the OS page cache (root only); whether it worked."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def run_vad(root: Path, args: list[str], env: dict[str, str], *python_flags: str) -> subprocess.CompletedProcess:
    """``python [FLAGS] -m apps.cli ARGS`` from checkout ``root``; stops the bench if it fails."""
    proc = subprocess.run([sys.executable, *python_flags, "-m", "apps.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{root}: vad {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc


def timed(root: Path, args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``vad ARGS`` run."""
    began = time.perf_counter()
    run_vad(root, args, env)
    return time.perf_counter() - began


def heavy_imports(root: Path, args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Heavy module -> its cumulative import seconds, for those ``vad ARGS`` imported (``-X importtime``;
    ``-v`` makes the CLI pass on what it captured from descriptor 2, where importtime writes)."""
    stderr = run_vad(root, ["-v", *args], env, "-X", "importtime").stderr
    return {name: int(us) / 1e6 for us, name in IMPORT_LINE.findall(stderr) if name in HEAVY}


def measure(roots: list[Path], make_args: Callable[[str], list[str]], env: dict[str, str], repeats: int,
            fresh_cache: Path | None, cold: bool) -> list[dict]:
    """Per checkout in ``roots``: cold (first, after dropping the page cache, and with an empty help cache under
    ``fresh_cache``) and warm (median of ``repeats``, after one untimed run) wall times, and the heavy imports
    (with an empty help cache: what a first ``--help`` loads). Checkouts take turns run by run, so the load of
    the machine falls on each alike; ``make_args(tag)`` gives a run's arguments (a fresh output per tag)."""
    runs: list[dict] = [{"cold": float("nan"), "warm": []} for _ in roots]
    envs = [{**env, "XDG_CACHE_HOME": f"{env['XDG_CACHE_HOME']}/{k}"} for k in range(len(roots))]  # one per tree
    first = [{**env, "XDG_CACHE_HOME": f"{fresh_cache}/{k}"} if fresh_cache else e for k, e in enumerate(envs)]
    for k, root in enumerate(roots):
        if cold and drop_page_cache():
            runs[k]["cold"] = timed(root, make_args(f"{k}-cold"), first[k])
        run_vad(root, make_args(f"{k}-first"), envs[k])  # warm: the page cache, and the help cache written
    for i in range(1, repeats + 1):
        for k, root in enumerate(roots):
            runs[k]["warm"].append(timed(root, make_args(f"{k}-{i}"), envs[k]))
    heavy = [heavy_imports(root, make_args(f"{k}-heavy"), {**env, "XDG_CACHE_HOME": f"{fresh_cache}/h{k}"}
                           if fresh_cache else envs[k]) for k, root in enumerate(roots)]
    return [{"cold": r["cold"], "warm": statistics.median(r["warm"]), "spread": max(r["warm"]) - min(r["warm"]),
             "heavy": h} for r, h in zip(runs, heavy, strict=True)]


def make_data(work: Path) -> dict[str, Path]:
    """Tiny benchmark, checkpoint, features and trained model (as ``tests/conftest.py`` makes them)."""
    from vad.engine.train import TrainConfig, train_from_paths
    from vad.features.backbone import TINY_MODEL, BackboneConfig, save_random_checkpoint
    from vad.features.extract import ExtractConfig, extract_videos
    from vad.features.video import SnippetConfig
    from vad.models.config import ModelConfig
    from vad.synth.benchmark import SynthConfig
    from vad.synth.generate import make_benchmark

    ckpt = save_random_checkpoint(TINY_MODEL, work / "tiny.safetensors", seed=0)
    bench = make_benchmark(work / "bench", SynthConfig(videos=12, seed=3, min_frames=48, max_frames=64),
                           progress=False)
    extract_videos([bench.root / "videos"], work / "feats",
                   ExtractConfig(backbone=BackboneConfig(TINY_MODEL, str(ckpt), "cpu"), snippets=SnippetConfig(8, 1)),
                   progress=False)
    train_from_paths(work / "feats", work / "model", bench.root, model_config=ModelConfig(hidden=32),
                     config=TrainConfig(epochs=2, batch_size=4, num_snippets=8, device="cpu"), progress=False)
    clip = min((bench.root / "videos").iterdir(), key=lambda p: p.stat().st_size)
    return {"ckpt": ckpt, "bench": bench.root, "feats": work / "feats", "model": work / "model", "clip": clip}


def jobs(d: dict[str, Path], out: Path) -> dict[str, Callable[[str], list[str]]]:
    """Verb -> the arguments of its run tagged ``i`` (a fresh output each: the verbs resume finished work)."""
    from vad.features.backbone import TINY_MODEL

    return {
        "synth": lambda i: ["synth", str(out / f"synth{i}"), "--videos", "6", "--min-frames", "48",
                            "--max-frames", "64"],
        "extract": lambda i: ["extract", str(d["clip"]), "--out", str(out / f"feats{i}"), "--backbone", TINY_MODEL,
                              "--pretrained", str(d["ckpt"]), "--device", "cpu", "--snippet-len", "8",
                              "--frames-per-snippet", "1"],
        "train": lambda i: ["train", "--features", str(d["feats"]), "--benchmark", str(d["bench"]), "--out",
                            str(out / f"model{i}"), "--epochs", "2", "--hidden", "32", "--num-snippets", "8",
                            "--train.batch-size", "4", "--device", "cpu"],
        "fit-normal": lambda i: ["fit-normal", "--features", str(d["feats"]), "--out", str(out / f"normal{i}"),
                                 "--device", "cpu"],
        "eval": lambda i: ["eval", "--model", str(d["model"]), "--features", str(d["feats"]), "--benchmark",
                           str(d["bench"]), "--device", "cpu", "--out", str(out / f"eval{i}.json")],
        "score": lambda i: ["score", str(d["clip"]), "--model", str(d["model"]), "--out", str(out / f"scores{i}"),
                            "--device", "cpu"],
        "export": lambda i: ["export", str(d["model"]), "--out", str(out / f"model{i}.onnx")],
    }


def row(name: str, m: dict) -> str:
    """One table row."""
    heavy = ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["heavy"].items(), key=lambda kv: -kv[1])) or "-"
    cold = "-" if m["cold"] != m["cold"] else f"{m['cold']:.2f}"
    return f"{name:<40} {cold:>7} {m['warm']:>7.2f} {m['spread']:>7.2f}  {heavy}"


def table(roots: list[Path], labels: list[str], commands: dict[str, Callable[[str], list[str]]],
          env: dict[str, str], repeats: int, fresh_cache: Path | None, cold: bool) -> None:
    """Measure and print one row per command and checkout."""
    for name, make_args in commands.items():
        for label, m in zip(labels, measure(roots, make_args, env, repeats, fresh_cache, cold), strict=True):
            print(row(f"{name}{label}", m), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per --help (5); the median is shown")
    parser.add_argument("--job-repeats", type=int, default=3, help="warm runs per end-to-end job (3)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold runs (they drop the page cache)")
    parser.add_argument("--baseline", type=Path, help="another checkout (e.g. `git worktree add /tmp/base main`), "
                                                      "timed in the same runs, in turns with this one")
    args = parser.parse_args(argv)
    from apps.cli import VERBS

    roots, labels = ([args.baseline.resolve(), ROOT], [" [baseline]", ""]) if args.baseline else ([ROOT], [""])
    work = Path(tempfile.mkdtemp(prefix="vad-bench-startup-"))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"), "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    began = time.perf_counter()
    data = make_data(work)
    cold = not args.no_cold and drop_page_cache()
    note = "page cache dropped before each cold run" if cold else "no cold runs (page cache not dropped)"
    print(f"# vad start-up: fresh process per run (python -m apps.cli), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; data made in {time.perf_counter() - began:.0f} s; {note}")
    print("# cold: first run after the page cache is dropped (for --help also with an empty help cache); warm: "
          "median of the runs after an untimed one, spread = max - min; heavy: modules imported (for --help with an "
          "empty help cache), cumulative import s (-X importtime)")
    print(f"{'command':<40} {'cold s':>7} {'warm s':>7} {'spread':>7}  heavy imports")
    helps = {f"vad {n} --help": (lambda _, n=n: [n, "--help"]) for n in VERBS}
    table(roots, labels, helps, env, args.repeats, work / "fresh-cache", cold)
    e2e = {f"vad {n} (end to end)": make_args for n, make_args in jobs(data, work / "out").items()}
    table(roots, labels, e2e, env, args.job_repeats, None, cold)
    print(f"--help: median of {args.repeats} runs; end to end: median of {args.job_repeats}; score: one "
          f"{data['clip'].stat().st_size // 1024} KB clip ({data['clip'].name}, tiny random backbone, tiny model)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
