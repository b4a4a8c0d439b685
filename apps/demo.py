"""``vad demo``: the whole job end to end on data it makes itself, with no download.

synth a small benchmark → extract features (pretrained CLIP if the weights are given or cached, otherwise a
random-initialised tiny backbone, chosen explicitly and announced) → train → evaluate on the test split →
score one held-out test video. Also makes the web UI's bundled example clip.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vad.errors import VadError, WeightsError
from vad.names import NORMAL_CLASS

log = logging.getLogger(__name__)

RUN_RECORD = "demo-run.json"  # settings and outputs of the last complete run (lets --serve reuse its model)
RANDOM_BANNER = ("no pretrained CLIP weights here: using a RANDOM-initialised backbone ({name}); pass "
                 "--pretrained TAG_OR_FILE (e.g. --pretrained openai once cached, or a .safetensors file) "
                 "for real features")

@dataclass(frozen=True)
class DemoConfig:
    """Size and backbone of a demo run."""

    quick: bool = False  # a much smaller run (for tests and a first look): < 1 minute on 2 CPU cores
    backbone: str = "ViT-B-16"  # open_clip model name tried with ``pretrained``
    pretrained: str | None = None  # weights tag or file; None: "openai" if cached, else the random tiny backbone
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0  # training seed
    data_seed: int = 7  # synthetic benchmark seed (7: the benchmark `python -m bench.quality` reports on)

    @property
    def videos(self) -> int:
        """Number of synthetic videos."""
        return 12 if self.quick else 300

    @property
    def epochs(self) -> int:
        """Training epochs (early stopping may end sooner)."""
        return 3 if self.quick else 40

@dataclass
class DemoResult:
    """Where everything the demo made lives, and the headline numbers."""

    out_dir: Path
    bench_dir: Path
    features_dir: Path
    model_dir: Path
    scores_dir: Path
    backbone: str  # "NAME [weights]"
    random_backbone: bool  # True when no pretrained weights were available
    metrics: dict  # EvalReport.to_dict()
    table: str  # the metrics table as printed
    scored_video: Path  # the held-out test video that was scored
    plot: Path  # its score plot
    csv: Path  # its frame scores
    seconds: dict[str, float] = field(default_factory=dict)  # step → wall time

def choose_backbone(config: DemoConfig, weights_dir: Path, echo: Callable[[str], None] = print):
    """The backbone config for the demo: the user's weights, cached ``openai`` weights, or a random tiny one.

    The random backbone is saved to ``weights_dir`` as a file, so the trained model records weights that
    ``vad score`` and ``vad serve`` can load again. Returns ``(BackboneConfig, is_random)``.
    """
    from vad.features.backbone import (
        RANDOM,
        TINY_MODEL,
        BackboneConfig,
        load_backbone,
        save_random_checkpoint,
    )

    if config.pretrained and config.pretrained != RANDOM:
        cfg = BackboneConfig(config.backbone, config.pretrained, config.device)
        load_backbone(cfg)  # fail now, with the backbone's clear message, if these weights cannot be had
        return cfg, False
    if config.pretrained is None:
        cfg = BackboneConfig(config.backbone, "openai", config.device)
        logging.disable(logging.ERROR)  # open_clip logs its failed download at ERROR level: the probe is quiet
        try:
            load_backbone(cfg)
            echo(f"demo: using cached pretrained weights {config.backbone} [openai]")
            return cfg, False
        except WeightsError as exc:
            log.info("no cached openai weights: %s", exc)
        finally:
            logging.disable(logging.NOTSET)
    name = TINY_MODEL
    path = weights_dir / f"{name}-random-seed{config.seed}.safetensors"
    if not path.exists():
        save_random_checkpoint(name, path, seed=config.seed)
    banner = RANDOM_BANNER.format(name=name)
    echo("!" * len(banner) + "\n" + banner + "\n" + "!" * len(banner))
    return BackboneConfig(name, str(path), config.device), True

def example_video(out_dir: str | os.PathLike, seed: int = 7) -> Path:
    """A short synthetic clip with one anomaly (a fire), for the web UI's example; made once, then reused.

    Written as VP8 WebM when OpenCV can (browsers play it), else as the benchmark's MJPG AVI.
    """
    import cv2

    from vad.synth.benchmark import SynthConfig, SynthVideo
    from vad.synth.generate import render_video

    out = Path(out_dir)
    webm = out / "example_fire.webm"
    if webm.exists():
        return webm
    avi = out / "example_fire.avi"
    if not avi.exists():
        cfg = SynthConfig(videos=6, seed=seed)
        render_video(SynthVideo("Fire_0001", "example_fire.avi", 1, "Fire", "test", 150, cfg.fps, 60, 105), cfg, avi)
    reader = cv2.VideoCapture(str(avi))
    tmp = out / ".example_fire.tmp.webm"
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"), 15.0, (160, 120))
    try:
        if not writer.isOpened():
            return avi
        while True:
            ok, frame = reader.read()
            if not ok:
                break
            writer.write(frame)
    finally:
        writer.release()
        reader.release()
    os.replace(tmp, webm)
    return webm

class _Steps:
    """Prints and times the demo's steps."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo, self.seconds, self.t0 = echo, {}, time.perf_counter()

    def done(self, name: str) -> None:
        self.seconds[name] = round(time.perf_counter() - self.t0, 2)
        self.echo(f"demo: {name} done in {self.seconds[name]:.1f} s")
        self.t0 = time.perf_counter()


def _extract(config: DemoConfig, bench_root: Path, out: Path, backbone, progress: bool, echo) -> Path:
    """Features of the benchmark's videos (reused when an earlier run made them with the same settings)."""
    from vad.features.extract import ExtractConfig, extract_videos
    from vad.features.video import SnippetConfig

    snippets = SnippetConfig(8, 2)
    feats_dir = out / f"features-{_slug(Path(backbone.pretrained).stem)}"
    echo(f"demo: [2/5] extracting features (CLIP {backbone.name} + optical-flow motion) -> {feats_dir}")
    ext = extract_videos([bench_root / "videos"], feats_dir, ExtractConfig(backbone=backbone, snippets=snippets),
                         progress=progress)
    if ext.failed:
        raise VadError(f"demo: feature extraction failed for {len(ext.failed)} video(s): "
                       f"{next(iter(ext.failed.values()))}")
    return feats_dir


def _train(config: DemoConfig, feats_dir: Path, bench_root: Path, model_dir: Path, progress: bool, echo):
    """Train the default model (``vad train``'s defaults) on the benchmark's train split."""
    from vad.engine.train import TrainConfig, train_from_paths
    from vad.models.config import ModelConfig

    echo(f"demo: [3/5] training the default model for up to {config.epochs} epochs -> {model_dir}")
    sizes = {"batch_size": 4, "num_snippets": 16} if config.quick else {"num_snippets": 32}
    train = TrainConfig(epochs=config.epochs, seed=config.seed, device=config.device, **sizes)
    result = train_from_paths(feats_dir, model_dir, bench_root, model_config=ModelConfig(), config=train,
                              progress=progress)
    echo(f"demo: best epoch {result.best_epoch}, val {result.val_metric} {result.best_val:.3f}, "
         f"{result.model.num_parameters():,} parameters")


def _evaluate(config: DemoConfig, feats_dir: Path, bench_root: Path, model_dir: Path, echo):
    """Test-split metrics next to chance and the training-free reference, so the numbers mean something."""
    from vad.data.dataset import load_dataset
    from vad.data.groundtruth import read_synth_gt
    from vad.engine.evaluate import GroundTruthSource, evaluate_dir
    from vad.engine.metrics import evaluate
    from vad.engine.reference import median_distance_scores
    from vad.io import write_json_atomic

    echo("demo: [4/5] evaluating on the held-out test split")
    device = "cpu" if config.device == "auto" else config.device
    ev = evaluate_dir(model_dir, feats_dir, split="test", gt_source=GroundTruthSource(benchmark=str(bench_root)),
                      device=device)
    gt = read_synth_gt(bench_root, "test")
    dataset = load_dataset(feats_dir, bench_root)
    reference = evaluate(median_distance_scores(dataset, "test"), gt.frames, gt.classes)
    table = ev.report.format_table()
    echo(table)
    echo(f"demo: frame AUC {100 * ev.report.auc:.1f} % | chance 50.0 % | training-free reference (distance from "
         f"the video's median, clip + motion) {100 * reference.auc:.1f} % | leak AUC {100 * ev.report.leak_auc:.1f} "
         f"% (50 = scores do not single out whole abnormal videos)")
    one_class = _one_class_auc(dataset, bench_root, device)
    echo(f"demo: side by side on the same test split: weakly supervised (video labels) {100 * ev.report.auc:.1f} % | "
         f"one-class (normal videos only, `vad fit-normal`) {100 * one_class:.1f} % | training-free "
         f"{100 * reference.auc:.1f} %")
    write_json_atomic(model_dir / "eval-test.json", {**ev.report.to_dict(), "reference_auc": reference.auc,
                                                     "one_class_auc": one_class})
    return ev.report, table, gt


def _one_class_auc(dataset, bench_root: Path, device: str) -> float:
    """Test frame AUC of a one-class model fitted on the train split's normal videos only (no labels used)."""
    from vad.data.groundtruth import read_synth_gt
    from vad.engine.evaluate import GroundTruthSource, evaluate_model
    from vad.engine.fit_normal import FitNormalConfig, NormalFitter
    from vad.models.checkpoint import LoadedModel

    val_gt = read_synth_gt(bench_root, "val").frames
    result = NormalFitter(dataset, FitNormalConfig(device=device), val_gt, progress=False).fit()
    loaded = LoadedModel(result.model, dataset.levels(), None, [], {}, {"thresholds": result.thresholds})
    return evaluate_model(loaded, dataset, "test", GroundTruthSource(benchmark=str(bench_root))).report.auc


def _score_examples(config: DemoConfig, bench, model_dir: Path, scores_dir: Path, gt, echo) -> list[Path]:
    """Score the first held-out test video of every class (hits and misses alike); each plot shows the
    ground-truth window beside the scores."""
    from vad.engine.score import ScoreConfig
    from vad.engine.score_job import score_videos

    first: dict[str, Path] = {}
    for v in bench.split("test"):
        first.setdefault(v.cls, bench.root / v.file)
    videos = list(first.values())
    echo(f"demo: [5/5] scoring {len(videos)} held-out test videos (one per class) -> {scores_dir}")
    report = score_videos(videos, model_dir, scores_dir, ScoreConfig(device=config.device), progress=False,
                          ground_truth=gt.frames)
    if report.failed:
        raise VadError(f"demo: scoring failed: {next(iter(report.failed.values()))}")
    return videos


def run_demo(out_dir: str | os.PathLike, config: DemoConfig = DemoConfig(), progress: bool = True,
             echo: Callable[[str], None] = print) -> DemoResult:
    """Run the demo in ``out_dir`` (created; an earlier run's features are reused) and print as it goes."""
    from vad.io import write_json_atomic
    from vad.synth.benchmark import SynthConfig
    from vad.synth.generate import make_benchmark

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(echo)
    backbone, is_random = choose_backbone(config, out / "weights", echo)
    steps.done("backbone")
    synth = SynthConfig(videos=config.videos, seed=config.data_seed,
                        **({"min_frames": 48, "max_frames": 80} if config.quick else {}))
    echo(f"demo: [1/5] synthesising {synth.videos} videos -> {out / 'bench'}")
    bench = make_benchmark(out / "bench", synth, progress=progress)
    steps.done("synth")
    feats_dir = _extract(config, bench.root, out, backbone, progress, echo)
    steps.done("extract")
    model_dir = out / "model"
    _train(config, feats_dir, bench.root, model_dir, progress, echo)
    steps.done("train")
    report, table, gt = _evaluate(config, feats_dir, bench.root, model_dir, echo)
    steps.done("eval")
    scores_dir = out / "scores"
    videos = _score_examples(config, bench, model_dir, scores_dir, gt, echo)
    steps.done("score")
    video = next((v for v in videos if not v.stem.startswith(NORMAL_CLASS)), videos[0])
    name = video.stem
    plot, csv_path = scores_dir / f"{name}.png", scores_dir / f"{name}.scores.csv"
    echo(f"demo: plots  {scores_dir}/*.png  (green band: ground truth, red: flagged segments, labelled with "
         f"their best prompt)\ndemo: scores and segments beside them (*.scores.csv, *.segments.json)")
    if is_random:
        echo("demo: NOTE the backbone is RANDOM-initialised (no CLIP weights can be downloaded here), so only the "
             "motion level and the scene statistics carry signal; real CLIP weights (--pretrained) add semantics")
    echo(f"demo: total {sum(steps.seconds.values()):.1f} s; serve the model with: vad serve --model {model_dir}")
    bb = f"{backbone.name} [{backbone.pretrained}]"
    write_json_atomic(out / RUN_RECORD, {"config": asdict(config), "model_dir": str(model_dir),
                                         "scored_video": str(video)})
    return DemoResult(out, bench.root, feats_dir, model_dir, scores_dir, bb, is_random, report.to_dict(), table,
                      video, plot, csv_path, steps.seconds)


def run_demo_outputs(out_dir: str | os.PathLike, config: DemoConfig, progress: bool = True) -> tuple[Path, Path]:
    """Run the demo; ``(model_dir, scored_video)`` for ``vad demo --serve``."""
    result = run_demo(out_dir, config, progress=progress)
    return result.model_dir, result.scored_video


def previous_run(out_dir: str | os.PathLike, config: DemoConfig) -> tuple[Path, Path] | None:
    """``(model_dir, scored_video)`` of an earlier complete demo run in ``out_dir`` with the same settings."""
    record = Path(out_dir) / RUN_RECORD
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_dir, video = Path(info.get("model_dir", "")), Path(info.get("scored_video", ""))
    if info.get("config") != asdict(config) or not (model_dir / "config.json").is_file() or not video.is_file():
        return None
    return model_dir, video


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]
