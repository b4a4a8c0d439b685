"""``vad serve``: the Gradio web UI. A thin layer: every result comes from :class:`vad.engine.score.Scorer`, the same
library object ``vad score`` uses; this module only lays out components and turns errors into messages.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from vad.engine.report import segment_thumbnails
from vad.engine.score import ScoreConfig, ScoredVideo, Scorer, check_upload
from vad.engine.segments import SegmentConfig
from vad.errors import VadError
from vad.features.backbone import RANDOM_NOTE
from vad.features.inputs import VIDEO_EXTENSIONS
from vad.io import one_line, printable

log = logging.getLogger(__name__)
CONCURRENCY = 2  # requests worked on at once; scoring itself is serialised by the Scorer (one backbone)
# gradio lays a gallery of one item out as one full-width square: keep thumbnails thumbnail-sized; the random
# backbone banner stands out; the score plot's image fills the page width
CSS = ("#segments-gallery .grid-container {"
       " grid-template-columns: repeat(auto-fill, minmax(160px, 200px)) !important; }"
       " #random-banner { background: #fff3cd; border: 2px solid #d39e00; border-radius: 6px; padding: 8px 14px;"
       " color: #533f03; font-weight: 600; }"
       " #score-plot img { width: 100% !important; max-width: none !important; height: auto !important; }"
       " #segment-captions { white-space: normal; overflow-wrap: anywhere; }")
RANDOM_BANNER = ("RANDOM-initialised backbone: scores show the pipeline works, not what real CLIP weights would "
                 "find")
RANDOM_SUBTITLE = RANDOM_NOTE  # the same words as `vad score`'s plots and notes
NO_RESULT = "No video scored yet."
TABLE_HEADERS = ["#", "start", "end", "seconds", "peak", "mean", "best-matching prompt"]
KEEP_REQUESTS = 32  # per-request output folders kept (the newest); older ones are removed
KEEP_SECONDS = 3600.0  # ...and none older than this; gradio's copies of uploads and outputs age out the same way
PRUNE_GRACE_S = 60.0  # nothing younger is removed: uploads waiting in the queue, outputs not yet downloaded
CACHE_ENTRIES_PER_REQUEST = 16  # gradio cache folders one request may make (upload, player copy, outputs, gallery)
_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]<>#|]")  # escaped in text shown as Markdown
_ABS_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/:'\"]+/)+(?=[^\s/:'\"])")  # the folders of an absolute path


def hide_paths(message: str) -> str:
    """``message`` with every absolute path cut to its base name (the server's folders are not the user's)."""
    return _ABS_PATH.sub("", message)


class UserError(Exception):
    """A request the UI answers with a message (no video chosen)."""


def is_random_backbone(weights: str | os.PathLike | None) -> bool:
    """Whether backbone ``weights`` are random-initialised (see :func:`vad.features.backbone.is_random_weights`)."""
    from vad.features.backbone import is_random_weights

    return is_random_weights(weights)


def scorer_is_random(scorer: Scorer) -> bool:
    """Whether ``scorer`` scores with a random-initialised backbone (the override, else the checkpoint's)."""
    return scorer.random_backbone


def error_message(exc: BaseException) -> str:
    """The one-line message shown for a failed request (no server paths)."""
    if isinstance(exc, UserError | VadError):
        return hide_paths(one_line(str(exc)))
    return hide_paths(one_line(f"scoring failed ({type(exc).__name__}: {exc})", 240))


def _api_errors(fn: Callable) -> Callable:
    """For API clients: a failed request raises ``gr.Error`` with the one-line message (``AppError`` for them)."""
    import gradio as gr

    def fail(message: str, exc: BaseException):
        raise gr.Error(message, print_exception=False) from exc
    return _on_error(fn, fail)


def _on_error(fn: Callable, handle: Callable[[str, BaseException], object]) -> Callable:
    """``fn`` with its errors turned into ``handle(one-line message, exception)``; unexpected errors (a bug, an odd
    file) are logged too: that request fails, the server keeps serving."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (UserError, VadError) as exc:
            return handle(error_message(exc), exc)
        except Exception as exc:
            log.exception("request failed")
            return handle(error_message(exc), exc)
    return wrapper


def _ui_errors(cleared: Callable[[str], tuple]) -> Callable[[Callable], Callable]:
    """Turn an error of the handler into ``cleared(message)``: the message persists in the status area, the other
    outputs are emptied (no toast, no error badges); unexpected errors are logged too (the server keeps serving)."""
    return lambda fn: _on_error(fn, lambda message, _exc: cleared(message))


def status_error(message: str) -> str:
    """The status Markdown for a failed request."""
    return f"⚠️ **Could not score this file:** {message}"


def _cleared(message: str) -> tuple:
    """Outputs after a failed request: plot, status, table, gallery, captions, files, summary, state."""
    return None, status_error(message), [], [], "", None, None, None


def captions_markdown(thumbnails: Sequence[tuple]) -> str:
    """The gallery's captions in full, one numbered line per key frame (gradio's own captions are cut short)."""
    if not thumbnails:
        return ""
    escaped = [_MD_SPECIAL.sub(r"\\\g<0>", printable(caption)) for _, caption in thumbnails]
    return "\n".join(f"{i + 1}. {caption}" for i, caption in enumerate(escaped))


def _views(scorer: Scorer, scored: ScoredVideo, out_dir: Path) -> tuple:
    """Everything shown for one scored video: plot, status, table, gallery, captions, files, summary."""
    from vad.engine.report import score_figure

    segs = scored.segments
    label = scorer.threshold_label(scored.config.threshold)
    paths = scorer.write_outputs(scored, out_dir)
    rows = [[i + 1, f"{s.start_s:.2f} s", f"{s.end_s:.2f} s", round(s.duration_s, 2), round(s.peak_score, 3),
             round(s.mean_score, 3), s.prompt or "–"] for i, s in enumerate(segs)]
    fr = scored.scores.frames
    status = (f"**{printable(scored.name)}** · {scored.scores.duration_s:.1f} s · max score **{fr.max():.3f}** · "
              f"**{len(segs)}** abnormal segment(s) at threshold {label}"
              f" · scored in {scored.seconds:.1f} s")
    summary = {"video": printable(scored.name), "max_score": round(float(fr.max()), 4), "num_frames": len(fr),
               "fps": scored.scores.fps, "threshold": scored.config.threshold, "threshold_source": label,
               "segments": [s.to_dict() for s in segs]}
    thumbs = segment_thumbnails(scored.path, segs)
    subtitle = RANDOM_SUBTITLE if scorer_is_random(scorer) else None
    return (score_figure(scored.scores, segs, scored.config.threshold, threshold_label=label, subtitle=subtitle),
            status, rows, thumbs, captions_markdown(thumbs),
            [str(paths["csv"]), str(paths["json"]), str(paths["png"])], summary)


def build_app(scorer: Scorer, examples: Sequence[str | os.PathLike] = (), max_upload_mb: float = 200.0,
              work_dir: str | os.PathLike | None = None):
    """The Gradio Blocks app over a loaded :class:`Scorer`."""
    import gradio as gr

    from apps.web_live import LiveRegistry, live_tab

    owned = work_dir is None
    work = Path(work_dir or tempfile.mkdtemp(prefix="vad-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    if os.environ.get("GRADIO_TEMP_DIR", "") in ("", os.environ.get("VAD_SERVE_GRADIO_TEMP_DIR")):
        os.environ["GRADIO_TEMP_DIR"] = os.environ["VAD_SERVE_GRADIO_TEMP_DIR"] = str(work / "gradio-cache")
    cache_dir = Path(os.environ["GRADIO_TEMP_DIR"])  # uploads and gradio's copies: under ``work`` unless set
    default = scorer.config.segments
    registry = LiveRegistry()

    def score(video: str | None, threshold: float, progress=gr.Progress()):  # noqa: B008 (gradio's idiom)
        """Score the uploaded file; the player gets it back (gradio converts it to a browser-playable mp4)."""
        if not video:
            raise UserError("Upload a video or pick an example first.")
        path = check_upload(video, max_upload_mb)
        prune_work(work, cache_dir if cache_dir.is_relative_to(work) else None,
                   keep_files=_kept_files(app) | {str(Path(video).absolute())})  # examples, and this upload
        progress(0.0, desc="decoding and encoding snippets")
        cfg = SegmentConfig(threshold, default.min_gap_s, default.min_length_s)
        scored = scorer.score(path, cfg, progress=lambda done, total: progress(
            done / max(total, 1), desc=f"scoring: {done}/{total} snippets"))
        out = Path(tempfile.mkdtemp(prefix="req-", dir=work))
        return (str(path), *_views(scorer, scored, out), {"scored": scored, "out": str(out)})

    score_ui = _ui_errors(lambda message: (None, *_cleared(message)))(score)  # the message stays in the status

    @_ui_errors(_cleared)
    def rethreshold(threshold: float, state: dict | None):
        """Segments of the kept scores at a new threshold (no re-scoring)."""
        if not state:
            return (gr.skip(),) * 8
        old: ScoredVideo = state["scored"]
        cfg = SegmentConfig(threshold, old.config.min_gap_s, old.config.min_length_s)
        scored = ScoredVideo(old.path, old.scores, scorer.segments(old.scores, cfg), cfg, old.seconds)
        return (*_views(scorer, scored, Path(state["out"])), {"scored": scored, "out": state["out"]})

    with gr.Blocks(title="vadgraph · video anomaly detection", analytics_enabled=False,
                   delete_cache=(600, int(KEEP_SECONDS))) as app:
        if scorer_is_random(scorer):
            gr.Markdown(f"⚠️ {RANDOM_BANNER}", elem_id="random-banner")
        gr.Markdown(f"## vadgraph · video anomaly detection\n"
                    f"Upload a video (≤ {max_upload_mb:.0f} MB) or pick an example, then **Score**; or watch a "
                    f"stream in the **Live** tab. "
                    f"Model: {hide_paths(scorer.describe())}.")
        with gr.Tab("Score a file", id="file"):
            state = gr.State(None)
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=260):
                    upload = gr.File(label="video file", file_count="single", height=140,
                                     file_types=list(VIDEO_EXTENSIONS))
                    if examples:
                        gr.Examples([[str(e)] for e in examples], inputs=[upload], label="examples")
                    threshold = gr.Slider(0.0, 1.0, value=default.threshold, step=0.001, label="threshold",
                                          info=f"model's: {scorer.threshold.description}; segments update "
                                               f"without re-scoring")
                    run = gr.Button("Score", variant="primary")
                with gr.Column(scale=4, min_width=600):
                    with gr.Row(equal_height=False):
                        player = gr.Video(label="video", interactive=False, height=300, scale=2)
                        with gr.Column(scale=3):
                            status = gr.Markdown(NO_RESULT, elem_id="status")
                            table = gr.Dataframe(headers=TABLE_HEADERS, label="abnormal segments",
                                                 interactive=False, wrap=True)
            plot = gr.Plot(label="anomaly score over time", elem_id="score-plot")
            gallery = gr.Gallery(label="top abnormal segments (key frame at the peak)", columns=6, rows=1, height=230,
                                 object_fit="contain", preview=False, allow_preview=True,
                                 elem_id="segments-gallery")
            captions = gr.Markdown("", elem_id="segment-captions")
            with gr.Row():
                files = gr.File(label="downloads: frame scores (CSV), segments (JSON), plot (PNG)",
                                file_count="multiple", interactive=False)
                summary = gr.JSON(label="result")
            fusion = scorer.fusion_figure()
            with gr.Accordion("What the model relies on: learned LEGO fusion weights", open=fusion is not None):
                if fusion is not None:
                    gr.Markdown("One matrix A per pair of feature graphs: cell (p, q) weighs the p-hop relations of "
                                "the first graph times the q-hop relations of the second (LEGO fusion). Shown "
                                "**relative to the uniform initialisation**: A[p, q] − 1/((P+1)(Q+1)), so 0 (white) "
                                "is unchanged by training, red is weighed more, blue less; the colour scale is "
                                "symmetric around 0 and ends at the largest |value|.", elem_id="fusion-caption")
                    gr.Plot(value=fusion, show_label=False)
                else:
                    gr.Markdown("This model has no LEGO fusion (an ablation or baseline).")
        with gr.Tab("Live", id="live"):
            live_tab(app, scorer, registry)
        outputs = [plot, status, table, gallery, captions, files, summary, state]
        # the browser's Score button shows errors in the status area; API clients of /score get them raised
        run.click(score_ui, [upload, threshold], [player, *outputs], api_name="score_ui",
                  api_visibility="undocumented")
        api_score = gr.Button(visible=False)
        api_score.click(_api_errors(score), [upload, threshold], [player, *outputs], api_name="score")
        threshold.release(rethreshold, [threshold, state], outputs, api_name="threshold",
                          show_progress="minimal")
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    app.vad_live = registry  # live runs, ended by close_app
    app.vad_work_dir = work  # where request outputs live (allowed for download)
    app.vad_owns_work_dir = owned  # removed by close_app
    return app


def _kept_files(app) -> set[str]:
    """Files gradio must keep (the examples)."""
    return {str(f) for block in app.blocks.values() for f in getattr(block, "keep_in_cache", ())}


def prune_work(work: Path, cache_dir: Path | None, keep: int | None = None, max_age_s: float | None = None,
               keep_files: set[str] = frozenset()) -> None:
    """Bound the server's disk use: per-request folders (``req-*``) beyond the newest ``keep`` or older than
    ``max_age_s`` are removed, and so are gradio's cache folders beyond ``CACHE_ENTRIES_PER_REQUEST`` times as
    many (never one holding an example); nothing younger than ``PRUNE_GRACE_S`` is removed, so a burst of requests
    can exceed the count for that long. Defaults: ``KEEP_REQUESTS`` and ``KEEP_SECONDS``."""
    keep = KEEP_REQUESTS if keep is None else keep
    max_age_s = KEEP_SECONDS if max_age_s is None else max_age_s
    _prune_folders(list(work.glob("req-*")), keep, max_age_s)
    if cache_dir is not None and cache_dir.is_dir():
        entries = [d for d in cache_dir.iterdir()  # hash folders of copies, and loose temp files
                   if not any(f == str(d) or f.startswith(str(d) + os.sep) for f in keep_files)]
        _prune_folders(entries, keep * CACHE_ENTRIES_PER_REQUEST, max_age_s)


def _prune_folders(folders: list[Path], keep: int, max_age_s: float) -> None:
    """Remove the folders (or files) beyond the newest ``keep`` by modification time, and those older than
    ``max_age_s``."""
    now, grace = time.time(), min(PRUNE_GRACE_S, max_age_s)
    aged = []
    for folder in folders:
        with contextlib.suppress(OSError):
            aged.append((_last_used(folder), folder))
    aged.sort(reverse=True)
    for i, (mtime, folder) in enumerate(aged):
        if now - mtime > max_age_s or i >= keep and now - mtime > grace:
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
            else:
                folder.unlink(missing_ok=True)


def _last_used(entry: Path) -> float:
    """Newest modification time of ``entry`` and its files: gradio touches a cached copy when it hands it out
    again (the cache is content-addressed: one upload or output shared by several requests)."""
    times = [entry.stat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [child.stat().st_mtime for child in entry.iterdir()]
    return max(times)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null meanwhile: silences C libraries that print there directly (OpenCV's
    FFmpeg writer ignores ``OPENCV_LOG_LEVEL``); use only while no other thread writes (start-up)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def close_app(app) -> None:
    """Stop the server and remove its work folder (request outputs, uploads) if the app made it."""
    live = getattr(app, "vad_live", None)
    if live is not None:
        live.stop_all()
    with contextlib.suppress(Exception):
        app.close()
    if getattr(app, "vad_owns_work_dir", False):
        shutil.rmtree(app.vad_work_dir, ignore_errors=True)


def launch(app, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 200.0, block: bool = True,
           quiet: bool = False):
    """Start the server; with ``block=False`` return at once (tests, notebooks). Returns ``app``."""
    app.launch(server_name=host, server_port=port, max_file_size=f"{int(max_upload_mb)}mb", show_error=True,
               allowed_paths=[str(app.vad_work_dir)], prevent_thread_lock=not block, quiet=quiet, css=CSS,
               ssr_mode=False, footer_links=["api"])
    return app


def serve(model_dir: str | os.PathLike, config: ScoreConfig | None = None, host: str = "127.0.0.1",
          port: int = 7860, max_upload_mb: float = 200.0, examples: Sequence[str | os.PathLike] | None = None,
          block: bool = True):
    """Load the model once and serve the UI (the library call behind ``vad serve``)."""
    from apps.demo import example_video

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    scorer = Scorer(model_dir, config or ScoreConfig())
    work = Path(tempfile.mkdtemp(prefix="vad-serve-"))
    if examples is None:
        with quiet_stderr():  # OpenCV prints a harmless "tag 'VP80' is not supported" while writing the webm
            examples = [example_video(work)]
        vtest = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # real street footage, if installed
        if vtest.exists():
            examples.append(vtest)
    # gradio serves (and converts for the player) only files under allowed directories: copy examples in
    examples = [e if Path(e).resolve().is_relative_to(work.resolve()) else shutil.copy(e, work) for e in examples]
    print(f"vad serve: {scorer.describe()}\nvad serve: open http://{host}:{port}")
    app = build_app(scorer, examples, max_upload_mb, work)
    app.vad_owns_work_dir = True  # made above: removed when the server stops
    if not block:
        return launch(app, host, port, max_upload_mb, block, quiet=True)
    try:
        return launch(app, host, port, max_upload_mb, block, quiet=True)  # no "share=True" tip; URL printed above
    finally:
        close_app(app)
