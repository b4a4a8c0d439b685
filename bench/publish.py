"""Run benchmarks and write their output into ``docs/benchmarks.md``, each section with its command and date.

    python -m bench.publish quality fusion_scaling hop_attention      # re-run these and update their sections
    python -m bench.publish --list

Sections of benches not named are kept as they were, so one slow bench can be refreshed alone. The quality bench
contributes its Markdown table (``bench/out/quality/results.md``); the others their printed output.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

DOC = Path("docs/benchmarks.md")
BENCHES: dict[str, tuple[str, ...]] = {
    "quality": ("-m", "bench.quality"),
    "extract": ("-m", "bench.extract"),
    "motion_cost": ("-m", "bench.motion_cost"),
    "fusion_scaling": ("-m", "bench.fusion_scaling"),
    "hop_attention": ("-m", "bench.hop_attention", "--threads", "1"),
    "live": ("-m", "bench.live", "--long-minutes", "30"),
    "startup": ("-m", "bench.startup"),
    "oneclass": ("-m", "bench.oneclass", "--hours", "1", "100"),
    "model_scaling": ("-m", "bench.model_scaling"),
    "gpu": ("-m", "bench.gpu"),
    "decode_scaling": ("-m", "bench.decode_scaling", "--ffmpeg-threads", "1", "--workers", "1", "2", "4", "8", "14"),
    "scale": ("-m", "bench.scale"),
}
HEADER = """# Benchmarks

Every figure below was produced by the command named in its section, on the machine and date given there
(`python -m bench.publish NAME` re-runs a bench and rewrites its section). Timings depend on the machine and on
what else runs on it: compare ratios measured within one run, not absolute seconds across sections.
"""


def run(name: str, reuse: bool = False) -> str:
    """Run one bench (``reuse``: the quality bench's last results instead) and return its Markdown section."""
    args = BENCHES[name]
    command = "python " + " ".join(args)
    started = time.perf_counter()
    table = Path("bench/out/quality/results.md")
    if not (reuse and name == "quality" and table.exists()):
        out = subprocess.run([sys.executable, *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{command} failed:\n{out.stderr[-2000:]}")
        body = out.stdout.strip()
    if name == "quality" and table.exists():
        body = table.read_text().strip()
    else:
        body = "```\n" + _readable(body) + "\n```"
    when = time.strftime("%Y-%m-%d")
    machine = (f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores, "
               f"Python {platform.python_version()}")
    return (f"## {name}\n\n`{command}` — {when}, {time.perf_counter() - started:.0f} s, {machine}\n\n{body}\n")


def _readable(output: str) -> str:
    """A bench's printed output; a single JSON line (``bench.gpu``) is indented so the doc can be read."""
    try:
        return json.dumps(json.loads(output), indent=1)
    except ValueError:
        return output


def sections(text: str) -> dict[str, str]:
    """The existing sections of the document, by bench name."""
    parts = re.split(r"(?m)^## ", text)
    return {p.split("\n", 1)[0].strip(): "## " + p for p in parts[1:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"benches to re-run: {', '.join(BENCHES)}")
    ap.add_argument("--list", action="store_true", help="list the benches and exit")
    ap.add_argument("--reuse", action="store_true", help="quality: publish bench/out/quality/results.md as it is")
    args = ap.parse_args()
    if args.list or not args.names:
        print("\n".join(f"{n}: python {' '.join(a)}" for n, a in BENCHES.items()))
        return
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown bench(es) {unknown}; choose from {', '.join(BENCHES)}")
    current = sections(DOC.read_text()) if DOC.exists() else {}
    for name in args.names:
        print(f"running {name} ...", flush=True)
        current[name] = run(name, args.reuse)
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(HEADER + "\n" + "\n\n".join(current[n].strip() for n in BENCHES if n in current) + "\n")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
