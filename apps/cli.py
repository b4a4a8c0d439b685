"""The ``vad`` command line: a thin front end, each verb one call into the library (DESIGN.md §5).

Exit codes: 0 success; 1 the run finished but some inputs failed (each named on stderr); 2 bad usage or
unusable input (one line, no traceback).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from vad.errors import VadError

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable:
    """Register ``fn`` as the handler of verb ``name``."""
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return register


def add_backbone_args(p: argparse.ArgumentParser) -> None:
    """``--backbone/--pretrained/--device`` and snippet options, shared by every verb that touches video."""
    g = p.add_argument_group("backbone")
    g.add_argument("--backbone", default="ViT-B-16", help="open_clip model name (default: ViT-B-16)")
    g.add_argument("--pretrained", default="openai",
                   help="open_clip tag (e.g. openai), a local checkpoint file, or 'random' (default: openai)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    g.add_argument("--batch-size", type=int, default=32, help="snippets decoded and encoded per batch")
    g.add_argument("--snippet-len", type=int, default=16, help="S: frames per snippet (default 16)")
    g.add_argument("--frames-per-snippet", type=int, default=1, help="F: frames encoded per snippet")
    g.add_argument("--patch-grid", type=int, default=2, help="patch tokens pooled to GRID x GRID (default 2)")
    g.add_argument("--prompts", type=Path, help="prompt file, one per line, the normal class first")


def extract_config_from_args(args: argparse.Namespace):
    """Build an ``ExtractConfig`` from the shared backbone arguments."""
    from vad.backbone import BackboneConfig
    from vad.extract import DEFAULT_PROMPTS, ExtractConfig, read_prompt_file
    from vad.video import SnippetConfig

    try:
        snippets = SnippetConfig(args.snippet_len, args.frames_per_snippet)
    except ValueError as exc:
        raise VadError(str(exc)) from exc
    return ExtractConfig(
        backbone=BackboneConfig(args.backbone, args.pretrained, args.device, args.precision, args.patch_grid),
        snippets=snippets, batch_snippets=args.batch_size,
        prompts=read_prompt_file(args.prompts) if args.prompts else DEFAULT_PROMPTS,
    )


def report_failures(failed: dict[str, str]) -> int:
    """Name each failed input on stderr; the exit code for a run that finished."""
    for reason in failed.values():
        print(f"vad: failed: {reason}", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


@command("extract")
def _extract(args: argparse.Namespace) -> int:
    from vad.extract import extract_videos

    report = extract_videos(args.inputs, args.out, extract_config_from_args(args), progress=not args.quiet)
    print(f"extract: {len(report.written)} written, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed -> {report.out_dir}")
    return report_failures(report.failed)


@command("synth")
def _synth(args: argparse.Namespace) -> int:
    from vad.synth import SynthConfig, make_benchmark

    bench = make_benchmark(args.out, SynthConfig(videos=args.videos, seed=args.seed, difficulty=args.difficulty),
                           progress=not args.quiet)
    print(f"synth: {bench}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = argparse.ArgumentParser(prog="vad", description="vadgraph: video anomaly detection with graph fusion")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic anomaly benchmark")
    p.add_argument("out", type=Path)
    p.add_argument("--videos", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--difficulty", type=float, default=0.5, help="0 easy … 1 hard (agent size, contrast, noise)")

    p = sub.add_parser("extract", help="decode videos and write multi-level CLIP features")
    p.add_argument("inputs", nargs="+", help="video files, directories or globs")
    p.add_argument("--out", type=Path, required=True, help="feature directory")
    add_backbone_args(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vad`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="vad: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except VadError as exc:
        print(f"vad: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vad: interrupted (finished outputs are kept; run again to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
