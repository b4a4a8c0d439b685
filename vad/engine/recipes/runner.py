"""``vad benchmark``: a dataset's standard weakly supervised protocol, end to end.

1. check the layout (:mod:`.layout`): split lists, test ground truth, a video file or published features for
   every listed video; every missing part is named before anything runs;
2. features: extract them from the videos (resumable) or read the published ones as they are;
3. train on the train list with video labels only; the validation videos that select the model are carved from
   the train list (stratified), never from the test list;
4. evaluate once on the test list with the dataset's metric, and write ``results.md`` / ``results.json`` with the
   published anchors beside our number and the ``vad`` commands that repeat each step.

The steps call the same library functions as ``vad extract``, ``vad train`` and ``vad eval``, with the files this
run writes to its output folder (``labels.csv``, ``videos.list`` or ``features.list``, ``test.list``,
``gt-test.npy``), so the printed commands reproduce the run.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from vad.data.dataset import Dataset, load_dataset
from vad.engine.evaluate import GroundTruthSource, evaluate_model
from vad.engine.recipes.commands import eval_command, extract_command, train_command
from vad.engine.recipes.config import BenchmarkConfig
from vad.engine.recipes.datasets import GT_PART, RECIPES, Recipe
from vad.engine.recipes.layout import FEATURES_DIR, Layout, check_layout, resolve
from vad.engine.recipes.results import RESULTS_MD, results_document, write_results
from vad.engine.train import train_model
from vad.errors import VadError
from vad.features.backbone import RANDOM_NOTE, is_random_weights, resolve_device
from vad.features.extract import extract_videos
from vad.io import save_npy_atomic, write_json_atomic, write_text_atomic
from vad.models.checkpoint import load_checkpoint

OVERRIDES = ("train_list", "test_list", "ground_truth")  # BenchmarkConfig fields that point at a layout part


@dataclass
class BenchmarkResult:
    """What a benchmark run produced."""

    out_dir: Path
    document: dict  # the content of results.json
    markdown: Path  # results.md
    failed: dict[str, str] = field(default_factory=dict)  # input -> why it was left out (videos, feature files)
    notes: list[str] = field(default_factory=list)  # what the run decided on its own


@dataclass
class _Features:
    """The features a run trains and evaluates on, how they were made, and the command that made them."""

    path: Path  # feature directory (extracted) or list file (published)
    description: str  # for the results table
    command: str | None  # the `vad extract` line, when extracted here
    failed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _write_labels(path: Path, layout: Layout) -> Path:
    """``labels.csv`` (name,label,class,split) of every listed video: the splits the lists define."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "label", "class", "split"])
    for split, names in layout.splits.items():
        writer.writerows([n, layout.labels[n][0], layout.labels[n][1], split] for n in names)
    write_text_atomic(path, buf.getvalue())
    return path


def _listed(layout: Layout) -> list[Path]:
    """Each listed video's first input file, train list then test list."""
    return [layout.inputs[n][0].resolve() for names in layout.splits.values() for n in names]


def _features(out: Path, layout: Layout, config: BenchmarkConfig, progress: bool,
              echo: Callable[[str], None]) -> _Features:
    """Extract the listed videos' features into ``OUT/features``, or list the published feature files."""
    if layout.kind != "videos":
        path = out / "features.list"
        write_text_atomic(path, "".join(f"{p}\n" for p in _listed(layout)))
        echo(f"benchmark: [2/4] reading published {layout.fmt} features of {len(layout.inputs)} videos")
        folder = resolve(config.features or FEATURES_DIR, layout.root)
        return _Features(path, f"published {layout.fmt} features ({folder})", None)
    videos, feats = out / "videos.list", out / "features"
    write_text_atomic(videos, "".join(f"{p}\n" for p in _listed(layout)))
    backbone = config.extract.backbone
    echo(f"benchmark: [2/4] extracting features of {len(layout.inputs)} videos ({backbone.name} "
         f"[{backbone.pretrained}]) -> {feats}")
    report = extract_videos(_listed(layout), feats, config.extract, progress=progress)
    description = f"CLIP {backbone.name} [{backbone.pretrained}] clip/frame/patch" + (
        " + motion" if config.extract.motion else "") + ", extracted here"
    return _Features(feats, description, extract_command(videos, feats, config.extract), report.failed,
                     list(report.notes))


def _write_ground_truth(out: Path, recipe: Recipe, layout: Layout, dataset: Dataset) -> tuple[Path, Path]:
    """``gt-test.npy`` (frame labels of the test videos concatenated, each as long as its features cover) and
    ``test.list`` (their order): the community's ground-truth form, which ``vad eval --gt`` reads."""
    names = [n for n in layout.splits["test"] if n in dataset.records and dataset.records[n].split == "test"]
    if not names:
        raise VadError(f"none of the {len(layout.splits['test'])} test videos could be read (see the failures above)")
    counts = {n: dataset.records[n].features.num_video_frames for n in names}
    gt = recipe.ground_truth(layout.files[GT_PART], counts, names)
    gt_path, list_path = out / "gt-test.npy", out / "test.list"
    save_npy_atomic(gt_path, gt.concatenated(names))
    write_text_atomic(list_path, "".join(f"{n}\n" for n in names))
    return gt_path, list_path


def _protocol(recipe: Recipe, layout: Layout, dataset: Dataset, seed: int) -> str:
    train, val, test = (len(dataset.split(s)) for s in ("train", "val", "test"))
    lists = {k: layout.files[k].name for k in ("train_list", "test_list")}
    return (f"weakly supervised (video labels only). Trained on {train} videos of {lists['train_list']}; {val} more "
            f"of it (stratified by label, seed {seed}) held out for model selection; evaluated once on {test} of "
            f"the {len(layout.splits['test'])} videos of {lists['test_list']}: {recipe.metric_name} over all their "
            f"frames concatenated.")


def run_benchmark(name: str, root: str | os.PathLike, out_dir: str | os.PathLike,
                  config: BenchmarkConfig = BenchmarkConfig(), progress: bool = True,
                  echo: Callable[[str], None] = print) -> BenchmarkResult:
    """Check ``root`` against benchmark ``name``'s layout, then extract (or read) features, train, evaluate on
    the test list, and write the results table to ``out_dir`` (see the module docstring)."""
    if name not in RECIPES:
        raise VadError(f"unknown benchmark {name!r} (one of {', '.join(RECIPES)})")
    recipe = RECIPES[name]
    layout = check_layout(recipe, root, {k: getattr(config, k) for k in OVERRIDES}, config.source, config.features)
    echo(f"benchmark: [1/4] {recipe.title} layout complete: {len(layout.splits['train'])} train and "
         f"{len(layout.splits['test'])} test videos, from {layout.kind}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = _write_labels(out / "labels.csv", layout)
    feats = _features(out, layout, config, progress, echo)
    dataset = load_dataset(feats.path, labels, layout.fmt, config.val_fraction, config.train.seed)  # as `vad train`
    gt_path, gt_list = _write_ground_truth(out, recipe, layout, dataset)
    model_dir = out / "model"
    echo(f"benchmark: [3/4] training on {len(dataset.split('train'))} videos, selecting on "
         f"{len(dataset.split('val'))} carved from the train list -> {model_dir}")
    trained = train_model(dataset, config.model, config.train, model_dir, None, progress, config.calibration)
    device = str(resolve_device(config.train.device))
    echo(f"benchmark: [4/4] evaluating on {len(dataset.split('test'))} test videos ({recipe.metric_name})")
    report = evaluate_model(load_checkpoint(model_dir, device), dataset, "test",
                            GroundTruthSource(gt_npy=str(gt_path), gt_list=str(gt_list)), None, device).report
    write_json_atomic(out / "eval-test.json", report.to_dict())
    commands = [c for c in (feats.command,) if c] + [
        train_command(feats.path, labels, layout.fmt, model_dir, config.val_fraction, config.model, config.train,
                      config.calibration),
        eval_command(model_dir, feats.path, labels, layout.fmt, gt_path, gt_list, out / "eval-test.json",
                     config.train.device)]
    failed = {**feats.failed, **dataset.failed}
    notes = feats.notes + dataset.notes + trained.notes
    if layout.kind == "videos" and is_random_weights(config.extract.backbone.pretrained):
        notes.append(f"{RANDOM_NOTE}: this number is not comparable with the published ones")
    if failed:
        notes.append(f"{len(failed)} input(s) could not be read and are left out: the number is not on the full "
                     f"test list")
    run = {"date": date.today().isoformat(), "root": str(layout.root), "features": feats.description,
           "protocol": _protocol(recipe, layout, dataset, config.train.seed), "best_epoch": trained.best_epoch,
           "val_metric": trained.val_metric, "best_val": trained.best_val,
           "splits": {s: [r.name for r in dataset.split(s)] for s in ("train", "val", "test")},
           "failed": failed, "notes": notes}
    doc = results_document(recipe, report.to_dict(), run, commands)
    markdown, _ = write_results(out, doc)
    return BenchmarkResult(out, doc, markdown, failed, notes)


__all__ = ["BenchmarkConfig", "BenchmarkResult", "RESULTS_MD", "run_benchmark"]
