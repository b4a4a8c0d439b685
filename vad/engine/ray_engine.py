"""Extraction and scoring on a Ray cluster: ``vad extract --engine ray`` and ``vad score --engine ray``.

Ray Data reads the list of videos (one block per video, so work is handed out video by video); a pool of
``workers`` actors, each holding one loaded backbone (``gpus_per_worker`` GPUs apiece on a CUDA cluster), runs the
local path's own per-video function (:func:`~vad.features.extract.extract_one`,
:func:`~vad.engine.score_job.score_one`), which writes that video's files atomically where the local path would. The
driver alone writes the manifest / ``summary.csv``, after each video that comes back, so concurrent workers never
touch it and a rerun after a crash does only the videos that are missing.

Ray restarts a worker that dies and retries its video (``retries`` times); a video that keeps killing its worker is
reported failed and the run goes on. Every node must see the inputs, the model and ``--out`` at the same paths (a
shared file system) and have vadgraph installed. Ray is an optional extra, imported only here and only when asked.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vad.engine.config import INSTALL_HINT, EngineConfig
from vad.engine.score import ScoreConfig, Scorer
from vad.engine.score_job import ScoreJob, ScoreOutcome, ScoreReport, ScorerFacts, score_one
from vad.errors import VadError
from vad.features.extract import ExtractConfig, ExtractJob, ExtractReport, FeatureExtractor, VideoOutcome, extract_one
from vad.features.store import TextFeatures
from vad.io import one_line

log = logging.getLogger(__name__)
def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line :class:`VadError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 -- Ray Data is a separate extra of Ray
    except ImportError as exc:
        raise VadError(f"`engine.name` ray needs Ray Data, which is not installed ({exc.name or exc}): "
                       f"{INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(engine: EngineConfig) -> Iterator[Any]:
    """Ray, connected to ``engine.address`` (or a runtime started on this machine) unless already initialised;
    a runtime started here is shut down after the block."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        verbose = logging.getLogger().isEnabledFor(logging.INFO)
        local = {} if engine.address else {"include_dashboard": False}
        try:
            ray.init(address=engine.address, log_to_driver=verbose,
                     logging_level=logging.INFO if verbose else logging.ERROR, **local)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise VadError(f"`engine.address` {engine.address}: cannot start or reach Ray ({one_line(str(exc), 200)})"
                           ) from None
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _enter(cwd: str, threads: float) -> None:
    """Set an actor or task up like the driver: its working folder (relative paths given to ``vad`` mean the same
    on every node of a shared file system; where the folder is missing they fail with the file's own error) and
    its share of the node, ``threads`` torch and OpenCV threads (not every core; the decode threads' automatic
    count follows torch's)."""
    import cv2
    import torch

    if os.path.isdir(cwd):
        os.chdir(cwd)
    torch.set_num_threads(max(1, int(threads)))
    cv2.setNumThreads(max(1, int(threads)))


class _Worker:
    """A Ray Data actor: per row ``{"path": video (bytes), "row": JSON}`` its outcome as JSON (``outcome``)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [self.process(Path(os.fsdecode(p)), json.loads(r)) for p, r in zip(batch["path"], batch["row"])]
        return {"index": batch["index"], "outcome": np.array([json.dumps(dataclasses.asdict(o)) for o in outcomes])}

    def process(self, video: Path, row: dict) -> Any:
        raise NotImplementedError


class ExtractWorker(_Worker):
    """Holds one loaded backbone; extracts whole videos into ``out`` (:func:`extract_one`)."""

    def __init__(self, config: ExtractConfig, out: str, threads: float, cwd: str) -> None:
        _enter(cwd, threads)
        self.extractor = FeatureExtractor(config)
        self.out = Path(out)

    def process(self, video: Path, row: dict) -> VideoOutcome:
        return extract_one(self.extractor, video, self.out)


class ScoreWorker(_Worker):
    """Holds one loaded model and backbone; scores whole videos into ``out`` (:func:`score_one`)."""

    def __init__(self, model_dir: str | None, config: ScoreConfig, out: str, threads: float, cwd: str) -> None:
        _enter(cwd, threads)
        self.scorer = Scorer(model_dir, config)
        self.out = Path(out)

    def process(self, video: Path, row: dict) -> ScoreOutcome:
        return score_one(self.scorer, video, self.out, row)


def _guarded(cwd: str, threads: float, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` set up like a worker (:func:`_enter`), a :class:`VadError` returned rather than raised (it
    reaches the driver as itself)."""
    _enter(cwd, threads)
    try:
        return fn(*args)
    except VadError as exc:
        return exc


def _on_cluster(ray: Any, engine: EngineConfig, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` run once where a worker would run (its resources), e.g. to check a model before the pool."""
    task = ray.remote(num_cpus=engine.cpus_per_worker, num_gpus=engine.gpus_per_worker)(_guarded)
    result = ray.get(task.remote(os.getcwd(), engine.cpus_per_worker, fn, *args))
    if isinstance(result, VadError):
        raise result
    return result


def _extraction_facts(config: ExtractConfig) -> tuple[str, TextFeatures]:
    """The backbone's weights id and the prompt embeddings (what the manifest and ``text.npz`` need)."""
    extractor = FeatureExtractor(config)
    return extractor.backbone.weights_id, extractor.text_features()


def _scorer_facts(model_dir: str | None, config: ScoreConfig) -> ScorerFacts:
    """What the driver needs of the scorer (loading it also checks the model: a bad one stops the run here)."""
    return ScorerFacts.of(Scorer(model_dir, config))


def _dispatch(ray: Any, engine: EngineConfig, worker: type, args: tuple, items: Sequence[tuple[Path, dict]],
              progress: bool, desc: str) -> Iterator[tuple[int, dict | None]]:
    """Run ``worker(*args)`` actors over ``items`` (video, row); yield ``(item index, outcome)`` as videos finish,
    then ``(index, None)`` for each video whose worker died more than ``engine.retries`` times on it."""
    from tqdm.auto import tqdm

    if not items:
        return
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.max_errored_blocks
    ctx.enable_progress_bars = False  # the driver's own bar counts videos
    ctx.max_errored_blocks = -1  # a lost video is reported below; the others go on
    logging.getLogger("ray.data").setLevel(logging.INFO if log.isEnabledFor(logging.INFO) else logging.CRITICAL)
    rows = [{"index": i, "path": os.fsencode(video), "row": json.dumps(row)} for i, (video, row) in enumerate(items)]
    left = set(range(len(items)))
    try:
        with warnings.catch_warnings():  # max_task_retries has no named parameter before Ray 2.64 (pyproject pins)
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                worker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(engine.workers, len(rows))),
                fn_constructor_args=args, num_cpus=engine.cpus_per_worker, num_gpus=engine.gpus_per_worker,
                max_task_retries=engine.retries)
        for out in tqdm(ds.iter_rows(), total=len(rows), desc=desc, unit="video", disable=not progress):
            left.discard(int(out["index"]))
            yield int(out["index"]), json.loads(out["outcome"])
    except ray.exceptions.RayError as exc:
        raise VadError(f"the Ray run stopped ({one_line(str(exc), 200)}); {len(rows) - len(left)} of {len(rows)} "
                       f"videos done and recorded: run again to do the rest") from None
    finally:
        ctx.enable_progress_bars, ctx.max_errored_blocks = saved
    for i in sorted(left):
        yield i, None


def _lost(engine: EngineConfig) -> str:
    return (f"no result from Ray: its worker died {engine.retries + 1} times on it, or failed unexpectedly "
            f"(see the Ray logs)")


def extract_videos_ray(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, config: ExtractConfig,
                       engine: EngineConfig, progress: bool = True) -> ExtractReport:
    """:func:`~vad.features.extract.extract_videos` on Ray: same files, manifest and report."""
    import_ray()
    job = ExtractJob(inputs, out_dir, config)
    with ray_session(engine) as ray:
        weights_id, text = _on_cluster(ray, engine, _extraction_facts, config)
        pending = job.start(weights_id, lambda: text)
        items = [(video, {}) for video in pending]
        args = (config, str(job.out), engine.cpus_per_worker, os.getcwd())
        for i, outcome in _dispatch(ray, engine, ExtractWorker, args, items, progress, "extract"):
            job.record(VideoOutcome(**outcome) if outcome else VideoOutcome.failure(pending[i], _lost(engine)))
    return job.finish()


def score_videos_ray(inputs: Sequence[str | os.PathLike], model_dir: str | os.PathLike | None,
                     out_dir: str | os.PathLike, config: ScoreConfig, engine: EngineConfig,
                     progress: bool = True) -> ScoreReport:
    """:func:`~vad.engine.score_job.score_videos` on Ray: same files, ``summary.csv`` and report."""
    import_ray()
    job = ScoreJob(inputs, out_dir)
    model = None if model_dir is None else str(model_dir)
    with ray_session(engine) as ray:
        facts = _on_cluster(ray, engine, _scorer_facts, model, config)
        items = job.start(facts)
        for i, outcome in _dispatch(ray, engine, ScoreWorker, (model, config, str(job.out), engine.cpus_per_worker,
                                                                     os.getcwd()),
                                    items, progress, "score"):
            video, row = items[i]
            job.record(ScoreOutcome(**outcome) if outcome else ScoreOutcome.failure(video, row, _lost(engine)))
    return job.finish()
