"""The ``vad`` command line: a thin front end, each verb one call into the library. Usage in the README.

Each verb is registered here with :func:`apps.cli_parser.verb`. Its options are generated from the config
dataclasses it passes to the library (``apps/cli_config.py``), so every config field is an option, documented by
its source comment; ``--config run.yaml`` reads a whole run and ``--print-config`` writes one. Only the invoked
verb's configs are imported, and the library (torch, open_clip, gradio) only inside its handler.

Exit codes: 0 success; 1 the run finished but some inputs failed (each named on stderr); 2 bad usage or
unusable input (one line, no traceback); 130 interrupted.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import replace

from apps.cli_parser import VERBS, Run, UsageError, arg, name_flags, parse, split_globals, verb
from vad.errors import VadError
from vad.names import BENCHMARKS

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMATS = ["auto", "vadgraph", "rtfm", "urdmu", "vadclip"]
INPUTS = arg("inputs", nargs="+", type=str, help="video files, directories or globs")
MODEL_DIR = arg("--model", type=str, required=True, help="model directory written by `vad train`")
GROUND_TRUTH = (
    arg("--benchmark", type=str | None, default=None, help="a `vad synth` directory (labels, splits, frame GT)"),
    arg("--labels", type=str | None, default=None, help="CSV with columns name,label[,class][,split]"),
    arg("--format", default="auto", choices=FORMATS, help="feature format (auto: detect)"),
)
WEB = (arg("--host", type=str, default="127.0.0.1", help="interface to listen on"),
       arg("--port", type=int, default=7860, help="port to listen on"))
BACKBONE_SHORTCUTS = {"--backbone": "backbone.name", "--pretrained": "backbone.pretrained",
                      "--device": "backbone.device", "--precision": "backbone.precision",
                      "--patch-grid": "backbone.patch_grid", "--snippet-len": "snippets.snippet_len",
                      "--frames-per-snippet": "snippets.frames_per_snippet"}
SEGMENT_SHORTCUTS = {"--threshold": "segments.threshold", "--min-gap": "segments.min_gap_s",
                     "--min-length": "segments.min_length_s"}
ENGINE = {"engine": "vad.engine.config:EngineConfig"}  # where extract / score do their per-video work
ENGINE_SHORTCUTS = {"--engine": "engine.name", "--address": "engine.address", "--workers": "engine.workers",
                    "--gpus-per-worker": "engine.gpus_per_worker", "--cpus-per-worker": "engine.cpus_per_worker"}
TRAIN_SHORTCUTS = {"--epochs": "train.epochs", "--lr": "train.lr", "--patience": "train.patience",
                   "--num-snippets": "train.num_snippets", "--seed": "train.seed", "--device": "train.device",
                   "--arch": "model.arch", "--hidden": "model.hidden", "--fusion": "model.fusion",
                   "--attention": "model.attention"}


def report_failures(run: Run, failed: dict[str, str], notes: Sequence[str] = ()) -> int:
    """Name each failed input on stderr (one line each), after the run's notes; the exit code for a run that
    finished."""
    from vad.io import one_line

    for note in notes:
        print(f"vad: note: {one_line(name_flags(note, run.name))}", file=sys.stderr)
    for path, reason in failed.items():
        shown, reason = one_line(path), one_line(reason)
        parts = reason.split(shown) if shown else [reason]
        reason = shown.join(name_flags(part, run.name) for part in parts)  # the path itself is left as it is
        print(f"vad: failed: {reason if shown in reason else f'{shown}: {reason}'}", file=sys.stderr)
    return EXIT_PARTIAL if failed else EXIT_OK


@verb("synth", "write a synthetic anomaly benchmark", {"": "vad.synth.benchmark:SynthConfig"},
      [arg("out", type=str, help="benchmark directory to write")])
def _synth(run: Run) -> int:
    from vad.synth.generate import make_benchmark

    bench = make_benchmark(run.args.out, run.configs[""], progress=not run.quiet)
    print(f"synth: {len(bench.videos)} videos ({sum(v.label for v in bench.videos)} abnormal) in "
          f"{bench.seconds:.1f} s -> {bench.root} (labels.csv, train/val/test lists, gt-val.npy, gt-test.npy)")
    return EXIT_OK


@verb("extract", "decode videos and write multi-level CLIP features",
      {"": "vad.features.config:ExtractConfig", **ENGINE},
      [INPUTS, arg("--out", type=str, required=True, help="feature directory"),
       arg("--prompt-file", type=str | None, default=None,
           help="read the prompts from this file, one per line, the normal class first (replaces --prompts)")],
      {**BACKBONE_SHORTCUTS, **ENGINE_SHORTCUTS})
def _extract(run: Run) -> int:
    from vad.features.extract import extract_videos, read_prompt_file

    config, engine = run.configs[""], run.configs["engine"]
    if run.args.prompt_file:
        config = replace(config, prompts=read_prompt_file(run.args.prompt_file))
    if engine.name == "ray":
        from vad.engine.ray_engine import extract_videos_ray

        report = extract_videos_ray(run.args.inputs, run.args.out, config, engine, progress=not run.quiet)
    else:
        report = extract_videos(run.args.inputs, run.args.out, config, progress=not run.quiet)
    print(f"extract: {len(report.written)} written, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed -> {report.out_dir}")
    return report_failures(run, report.failed, getattr(report, "notes", ()))


@verb("train", "train the anomaly model with video-level labels",
      {"model": "vad.models.config:ModelConfig", "train": "vad.engine.config:TrainConfig",
       "calibration": "vad.engine.config:CalibrationConfig"},
      [arg("--features", type=str, required=True, help="feature directory or peer feature list"),
       arg("--out", type=str, required=True, help="model directory to write"), *GROUND_TRUTH,
       arg("--val-fraction", type=float, default=0.15, help="carved from train when there is no val split")],
      TRAIN_SHORTCUTS)
def _train(run: Run) -> int:
    from vad.engine.calibration import stored_threshold
    from vad.engine.distributed import is_main
    from vad.engine.train import train_from_paths
    from vad.models.checkpoint import read_model_info

    a = run.args
    result = train_from_paths(a.features, a.out, a.labels or a.benchmark, a.format, run.configs["model"],
                              run.configs["train"], a.val_fraction, progress=not run.quiet,
                              calibration=run.configs["calibration"])
    if not is_main():  # torchrun: rank 0 reports (every rank holds the same result)
        return EXIT_OK
    print(f"train: best epoch {result.best_epoch}, val {result.val_metric} {result.best_val:.4f}, "
          f"{result.model.num_parameters():,} parameters, {result.seconds_per_epoch:.2f} s/epoch -> {a.out}")
    print(f"train: threshold {stored_threshold(read_model_info(a.out)).description}")
    return report_failures(run, getattr(result, "failed", {}), getattr(result, "notes", ()))


@verb("fit-normal", "fit a one-class model on normal videos only: no labels, thresholds from held-out videos",
      {"": "vad.engine.config:FitNormalConfig"},
      [arg("--features", type=str, required=True, help="feature directory of normal videos, or a peer feature list"),
       arg("--out", type=str, required=True, help="model directory to write"),
       arg("--format", default="auto", choices=FORMATS, help="feature format (auto: detect)")],
      {"--memory-size": "memory.size", "--target-far": "calibration.target_far"})
def _fit_normal(run: Run) -> int:
    from vad.engine.calibration import stored_threshold
    from vad.engine.fit_normal import fit_normal_from_paths

    a = run.args
    result = fit_normal_from_paths(a.features, a.out, a.format, run.configs[""], progress=not run.quiet)
    kept = ", ".join(f"{lvl} {n:,} of {result.stats['seen'][lvl]:,}" for lvl, n in result.stats["kept"].items())
    print(f"fit-normal: {result.stats['videos']} normal videos; memory {kept} vectors; "
          f"{result.stats['memory_seconds'] + result.stats['calibration_seconds']:.1f} s -> {a.out}")
    print(f"fit-normal: threshold {stored_threshold({'thresholds': result.thresholds}).description}")
    for note in result.notes:
        print(f"fit-normal: note: {note}")
    return EXIT_OK


@verb("eval", "frame AUC, AP, FAR, time to detect and per-class metrics of a model", {},
      [MODEL_DIR, arg("--features", type=str, required=True, help="feature directory or peer feature list"),
       *GROUND_TRUTH,
       arg("--split", type=str, default="test", help="train | val | test | all"),
       arg("--gt", type=str | None, default=None, help="concatenated frame-level gt-*.npy"),
       arg("--gt-list", type=str | None, default=None, help="the list file that gt-*.npy follows"),
       arg("--annotations", type=str | None, default=None, help="UCF-Crime Temporal_Anomaly_Annotation.txt"),
       arg("--threshold", type=float | None, default=None,
           help="frames scoring >= this are abnormal, for FAR and time to detect (default: the model's calibrated "
                "threshold, 0.5 for models without one)"),
       arg("--out", type=str | None, default=None, help="metrics JSON (default: MODEL/eval-SPLIT.json)"),
       arg("--device", type=str, default="auto", help="auto | cpu | cuda | cuda:N")])
def _eval(run: Run) -> int:
    from vad.engine.evaluate import GroundTruthSource, evaluate_dir
    from vad.features.backbone import resolve_device
    from vad.io import write_json_atomic

    a = run.args
    source = GroundTruthSource(a.benchmark, a.gt, a.gt_list, a.annotations)
    result = evaluate_dir(a.model, a.features, a.labels, a.split, source, a.format, a.threshold,
                          str(resolve_device(a.device)))  # evaluate_dir takes a concrete device, not "auto"
    print(result.report.format_table())
    out = a.out or f"{a.model}/eval-{a.split}.json"
    write_json_atomic(out, result.report.to_dict())
    print(f"eval: metrics written to {out}")
    return report_failures(run, getattr(result, "failed", {}))


@verb("score", "score videos: per-video frame scores (CSV), segments (JSON), plot; resumable",
      {"": "vad.engine.config:ScoreConfig", **ENGINE},
      [INPUTS, arg("--model", type=str | None, default=None,
                   help="model directory written by `vad train` or `vad fit-normal` (not with --zero-shot)"),
       arg("--out", type=str, required=True, help="output directory")], {**SEGMENT_SHORTCUTS, **ENGINE_SHORTCUTS})
def _score(run: Run) -> int:
    from vad.engine.score_job import score_videos

    config, engine, a = run.configs[""], run.configs["engine"], run.args
    if not a.model and not config.zero_shot:
        raise UsageError("score needs --model MODEL_DIR, or --zero-shot (see vad score --help)")
    if a.model and config.zero_shot:
        raise UsageError("--zero-shot scores without a model: drop --model (see vad score --help)")
    if engine.name == "ray":
        from vad.engine.ray_engine import score_videos_ray

        report = score_videos_ray(a.inputs, a.model, a.out, config, engine, progress=not run.quiet)
    else:
        report = score_videos(a.inputs, a.model, a.out, config, progress=not run.quiet)
    print(f"score: threshold {report.threshold}")
    print(f"score: {len(report.written)} scored, {len(report.skipped)} already done, {len(report.failed)} failed "
          f"-> {report.out_dir} (summary: {report.summary_path})")
    return report_failures(run, report.failed, getattr(report, "notes", ()))


@verb("export", "export a trained model's scoring head to ONNX (one video, any number of snippets)", {},
      [arg("model_dir", type=str, help="model directory written by `vad train`"),
       arg("--out", type=str | None, default=None, help="ONNX file to write (default: MODEL_DIR/model.onnx)")])
def _export(run: Run) -> int:
    from vad.engine.export import export_onnx

    path = export_onnx(run.args.model_dir, run.args.out)
    print(f"export: {path} (inputs clip[, frame, patch, motion] of shape (1, N, ...), output scores (1, N))")
    return EXIT_OK


@verb("serve", "the web UI: upload a video, see its anomaly scores and segments", {"": "vad.engine.config:ScoreConfig"},
      [MODEL_DIR, *WEB, arg("--max-upload-mb", type=float, default=200.0, help="largest accepted upload (MB)")],
      SEGMENT_SHORTCUTS)
def _serve(run: Run) -> int:
    from apps.web import serve

    a = run.args
    serve(a.model, run.configs[""], host=a.host, port=a.port, max_upload_mb=a.max_upload_mb)
    return EXIT_OK


@verb("watch", "score a camera or stream live: JSON events, alerts with evidence clips, webhook",
      {"": "vad.engine.live:LiveConfig"}, [MODEL_DIR])
def _watch(run: Run) -> int:
    from apps.watch import run_watch

    return run_watch(run.args, run.configs[""])


@verb("benchmark", "a dataset's standard protocol: check its layout, extract, train, evaluate, compare with papers",
      {"": "vad.engine.recipes.config:BenchmarkConfig"},
      [arg("dataset", choices=list(BENCHMARKS), help="which benchmark's protocol to run"),
       arg("--root", type=str, required=True, help="the dataset folder, laid out as its authors distribute it"),
       arg("--out", type=str | None, default=None, help="results folder (default: benchmark-DATASET)")],
      {"--epochs": "train.epochs", "--seed": "train.seed", "--backbone": "extract.backbone.name",
       "--pretrained": "extract.backbone.pretrained", "--snippet-len": "extract.snippets.snippet_len"})
def _benchmark(run: Run) -> int:
    from vad.engine.recipes.runner import run_benchmark

    a = run.args
    result = run_benchmark(a.dataset, a.root, a.out or f"benchmark-{a.dataset}", run.configs[""],
                           progress=not run.quiet)
    ours, doc = result.document["ours"]["value"], result.document
    anchors = ", ".join(f"{x['method']} {100 * x['value']:.2f}" for x in doc["anchors"])
    shown = "n/a" if ours is None else f"{100 * ours:.2f} %"
    print(f"benchmark: {doc['dataset']} {doc['metric']} {shown} (published: {anchors}) -> {result.markdown}")
    return report_failures(run, result.failed, result.notes)


@verb("demo", "synth -> extract -> train -> eval -> score, on data it makes itself", {"": "apps.demo:DemoConfig"},
      [arg("--out", type=str, default="vad-demo", help="working directory"),
       arg("--serve", type=bool, default=False, nargs="?", const=True, help="then open the web UI on the model"),
       *WEB])
def _demo(run: Run) -> int:
    from apps.demo import previous_run, run_demo_outputs

    a, config = run.args, run.configs[""]
    reused = previous_run(a.out, config) if a.serve else None
    if reused is not None:
        print(f"demo: reusing the model trained earlier with the same settings: {reused[0]}")
    model_dir, video = reused or run_demo_outputs(a.out, config, progress=not run.quiet)
    if a.serve:
        from apps.web import serve
        from vad.engine.score import ScoreConfig

        serve(model_dir, ScoreConfig(device=config.device), host=a.host, port=a.port, examples=[video])
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vad`` console script. Decoder noise on descriptor 2 is captured (shown with -v)."""
    from apps.native import native_stderr_captured

    found, argv = split_globals(sys.argv[1:] if argv is None else argv)
    with native_stderr_captured() as native:
        code = _main(found, argv)
    if "verbose" in found and native.text.strip():
        print("vad: what the decoders said:\n" + native.text.rstrip(), file=sys.stderr)
    return code


def _main(found: set[str], argv: list[str]) -> int:
    """:func:`main` inside the capture: parse, run the verb, turn errors into exit codes. The settings library
    messages name (`` `field` ``) are shown as this verb's flags."""
    from vad.io import one_line

    first_word = next((a for a in argv if not a.startswith("-")), None)  # as parse() finds the verb
    verb_name = first_word if first_word in VERBS else None
    logging.basicConfig(level=logging.INFO if "verbose" in found else logging.WARNING, format="vad: %(message)s")
    for handler in logging.getLogger().handlers:
        if _FLAG_NAMES not in handler.filters:
            handler.addFilter(_FLAG_NAMES)
    _FLAG_NAMES.verb = verb_name  # until this run ends: later warnings in the process keep the library's words
    try:
        name, ns, configs = parse(argv)
        return VERBS[name].run(Run(name, ns, configs, quiet="quiet" in found))
    except SystemExit as exc:  # --help, --version, --print-config
        return EXIT_OK if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except (UsageError, VadError) as exc:
        print(f"vad: error: {one_line(name_flags(str(exc), verb_name))}", file=sys.stderr)
        for part in getattr(exc, "missing", ()):  # LayoutError: one line per missing part
            print(f"vad: missing: {one_line(name_flags(part, verb_name))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vad: interrupted (finished outputs are kept; run again to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        _FLAG_NAMES.verb = None


class _FlagNames(logging.Filter):
    """A library warning's setting names shown as the running verb's flags (the record is always kept)."""

    verb: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verb is not None:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 -- arguments that do not format: logging reports it, unchanged
                return True
            if "`" in message:
                record.msg, record.args = name_flags(message, self.verb), ()
        return True


_FLAG_NAMES = _FlagNames()  # one filter per process, whichever verb runs (tests run many in one process)


if __name__ == "__main__":
    sys.exit(main())
