"""The ``vad`` command line: a thin front end, each verb one call into the library (DESIGN.md §5).

Exit codes: 0 success; 1 the run finished but some inputs failed (each named on stderr); 2 bad usage or
unusable input (one line, no traceback).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    from vad.features.backbone import BackboneConfig
    from vad.features.extract import DEFAULT_PROMPTS, ExtractConfig, read_prompt_file
    from vad.features.video import SnippetConfig

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
    from vad.features.extract import extract_videos

    report = extract_videos(args.inputs, args.out, extract_config_from_args(args), progress=not args.quiet)
    print(f"extract: {len(report.written)} written, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed -> {report.out_dir}")
    return report_failures(report.failed)


@command("synth")
def _synth(args: argparse.Namespace) -> int:
    from vad.synth.benchmark import SynthConfig
    from vad.synth.generate import make_benchmark

    bench = make_benchmark(args.out, SynthConfig(videos=args.videos, seed=args.seed, difficulty=args.difficulty),
                           progress=not args.quiet)
    print(f"synth: {len(bench.videos)} videos ({sum(v.label for v in bench.videos)} abnormal) in "
          f"{bench.seconds:.1f} s -> {bench.root} (labels.csv, train/val/test lists, gt-val.npy, gt-test.npy)")
    return EXIT_OK


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Model architecture switches (ablations and baselines) for ``vad train``."""
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="vadgraph", choices=["vadgraph", "mil_mlp", "mtn_concat"])
    g.add_argument("--fusion", default="lego", choices=["lego", "concat"], help="ablation: concat fusion")
    g.add_argument("--attention", default="hop", choices=["hop", "plain", "none"])
    g.add_argument("--no-qformer", action="store_true", help="ablation: no MM-QFormer")
    g.add_argument("--levels", default="clip,frame,patch,text", help="feature levels to fuse")
    g.add_argument("--hidden", type=int, default=128)


def add_gt_args(p: argparse.ArgumentParser) -> None:
    """Where labels and frame ground truth come from."""
    g = p.add_argument_group("labels and ground truth")
    g.add_argument("--benchmark", type=Path, help="a `vad synth` directory (labels, splits, frame GT)")
    g.add_argument("--labels", type=Path, help="CSV with columns name,label[,class][,split]")
    g.add_argument("--format", default="auto", choices=["auto", "vadgraph", "rtfm", "urdmu", "vadclip"],
                   help="feature format (default: detect)")


@command("train")
def _train(args: argparse.Namespace) -> int:
    from vad.engine.train import TrainConfig, train_from_paths
    from vad.models.config import ModelConfig

    model_cfg = ModelConfig(arch=args.arch, fusion=args.fusion, attention=args.attention,
                            qformer=not args.no_qformer, levels=tuple(args.levels.split(",")), hidden=args.hidden)
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, num_snippets=args.num_snippets,
                            lr=args.lr, patience=args.patience, seed=args.seed, device=args.device)
    result = train_from_paths(args.features, args.out, args.labels or args.benchmark, args.format, model_cfg,
                              train_cfg, args.val_fraction, progress=not args.quiet)
    print(f"train: best epoch {result.best_epoch}, val {result.val_metric} {result.best_val:.4f}, "
          f"{result.model.num_parameters():,} parameters, {result.seconds_per_epoch:.2f} s/epoch -> {args.out}")
    return EXIT_OK


@command("eval")
def _eval(args: argparse.Namespace) -> int:
    from vad.engine.evaluate import GroundTruthSource, evaluate_dir
    from vad.io import write_json_atomic

    source = GroundTruthSource(str(args.benchmark) if args.benchmark else None, args.gt, args.gt_list,
                               args.annotations)
    result = evaluate_dir(args.model, args.features, str(args.labels) if args.labels else None, args.split,
                          source, args.format, args.threshold, args.device)
    print(result.report.format_table())
    out = args.out or Path(args.model) / f"eval-{args.split}.json"
    write_json_atomic(out, result.report.to_dict())
    print(f"eval: metrics written to {out}")
    return EXIT_OK


@command("score")
def _score(args: argparse.Namespace) -> int:
    from vad.engine.score import ScoreConfig, score_videos
    from vad.engine.segments import SegmentConfig

    config = ScoreConfig(SegmentConfig(args.threshold, args.min_gap, args.min_length), args.device,
                         args.batch_size, args.backbone, args.pretrained)
    report = score_videos(args.inputs, args.model, args.out, config, progress=not args.quiet)
    print(f"score: {len(report.written)} scored, {len(report.skipped)} already done, {len(report.failed)} failed "
          f"-> {report.out_dir} (summary: {report.summary_path})")
    return report_failures(report.failed)


@command("serve")
def _serve(args: argparse.Namespace) -> int:
    from apps.web import serve
    from vad.engine.score import ScoreConfig
    from vad.engine.segments import SegmentConfig

    serve(args.model, ScoreConfig(SegmentConfig(args.threshold), args.device, args.batch_size, args.backbone,
                                  args.pretrained), host=args.host, port=args.port, max_upload_mb=args.max_upload_mb)
    return EXIT_OK


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    from apps.demo import DemoConfig, run_demo

    result = run_demo(args.out, DemoConfig(quick=args.quick, backbone=args.backbone, pretrained=args.pretrained,
                                           device=args.device), progress=not args.quiet)
    if args.serve:
        from apps.web import serve
        from vad.engine.score import ScoreConfig

        serve(result.model_dir, ScoreConfig(device=args.device), host=args.host, port=args.port,
              examples=[result.scored_video])
    return EXIT_OK


def add_scoring_args(p: argparse.ArgumentParser, segments: bool = True) -> None:
    """Options of the verbs that score raw videos with a trained model (``score``, ``serve``)."""
    p.add_argument("--model", type=Path, required=True, help="model directory written by `vad train`")
    p.add_argument("--threshold", type=float, default=0.5, help="frames scoring >= this are abnormal (0.5)")
    if segments:
        p.add_argument("--min-gap", type=float, default=1.0, help="merge segments closer than this (s, 1.0)")
        p.add_argument("--min-length", type=float, default=0.5, help="drop segments shorter than this (s, 0.5)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--batch-size", type=int, default=32, help="snippets decoded and encoded per batch")
    g = p.add_argument_group("backbone (default: the one recorded in the model)")
    g.add_argument("--backbone", help="open_clip model name override")
    g.add_argument("--pretrained", help="weights (tag or file) when the model's are not on this machine")


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

    p = sub.add_parser("train", help="train the anomaly model with video-level labels")
    p.add_argument("--features", type=Path, required=True, help="feature directory or peer feature list")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    add_gt_args(p)
    add_model_args(p)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--num-snippets", type=int, default=64, help="training videos resampled to this length")
    g.add_argument("--lr", type=float, default=5e-4)
    g.add_argument("--patience", type=int, default=6)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--val-fraction", type=float, default=0.15, help="carved from train when there is no val")
    g.add_argument("--device", default="auto")

    p = sub.add_parser("eval", help="frame AUC, AP, FAR and per-class AUC of a trained model")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--features", type=Path, required=True)
    add_gt_args(p)
    p.add_argument("--split", default="test", help="train | val | test | all (default: test)")
    p.add_argument("--gt", help="concatenated frame-level gt-*.npy")
    p.add_argument("--gt-list", help="the list file that gt-*.npy follows")
    p.add_argument("--annotations", help="UCF-Crime Temporal_Anomaly_Annotation.txt")
    p.add_argument("--threshold", type=float, default=0.5, help="for the false-alarm rate")
    p.add_argument("--out", type=Path, help="metrics JSON (default: MODEL/eval-SPLIT.json)")
    p.add_argument("--device", default="cpu")
    p = sub.add_parser("score", help="score videos: per-video frame scores (CSV), segments (JSON), plot; resumable")
    p.add_argument("inputs", nargs="+", help="video files, directories or globs")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    add_scoring_args(p)

    p = sub.add_parser("serve", help="the web UI: upload a video, see its anomaly scores and segments")
    add_scoring_args(p, segments=False)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted upload (MB)")

    p = sub.add_parser("demo", help="synth -> extract -> train -> eval -> score, on data it makes itself")
    p.add_argument("--out", type=Path, default=Path("vad-demo"), help="working directory (default ./vad-demo)")
    p.add_argument("--quick", action="store_true", help="a much smaller run (under a minute)")
    p.add_argument("--serve", action="store_true", help="then open the web UI on the demo model")
    p.add_argument("--backbone", default="ViT-B-16", help="open_clip model name, used with --pretrained")
    p.add_argument("--pretrained", help="CLIP weights (tag or file); default: openai if cached, else a random "
                                        "tiny backbone (announced)")
    p.add_argument("--device", default="auto")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
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
