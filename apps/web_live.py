"""The web UI's Live tab: a stream scored by :func:`vad.engine.live.run_live` (the loop behind ``vad watch``) in a
background thread per browser session; its events come through a bounded queue and a timer redraws the tab.

Resources are bounded: one live run per browser session (a new Start replaces it; Stop or closing the page ends
it) and at most ``MAX_SESSIONS`` runs on the server at once. Runs share the app's loaded model and take its lock
per snippet, so a file being scored delays them (snippets are then skipped, as ``vad watch`` does when behind).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np

from apps.web import UserError, error_message, status_error
from vad.engine.live import LiveConfig, LiveSession, LiveSummary, SnippetScore
from vad.engine.live_model import ModelSnippetScorer

if TYPE_CHECKING:
    from vad.engine.score import Scorer

log = logging.getLogger(__name__)
MAX_SESSIONS = 2  # live runs on the server at once
EVENT_QUEUE = 512  # events waiting for the UI per run (the oldest are dropped beyond this)
HISTORY_S = 60.0  # seconds of stream the score curve shows
POLL_S = 1.0  # the tab redraws this often while a run is on
WINDOW = 64  # W: snippets of context the model sees
ALERT_HEADERS = ["#", "start", "end", "seconds", "peak", "prompt"]
IDLE = "No live stream running. Enter a stream URL (rtsp/http/udp…) or a video file on the server, then **Start**."


class FrameKeeper:
    """A snippet scorer that keeps the newest snippet's last frame (the tab's current frame) and runs the model
    under the app scorer's lock."""

    def __init__(self, inner: ModelSnippetScorer, lock: threading.Lock) -> None:
        self.inner, self.lock = inner, lock
        self.snippets, self.short_side = inner.snippets, inner.short_side
        self.pairs, self.default_threshold = inner.pairs, inner.default_threshold
        self.frame: np.ndarray | None = None

    def describe(self) -> str:
        """The model, in one line."""
        return self.inner.describe()

    def score(self, frames: np.ndarray) -> SnippetScore:
        """Keep the last frame, then score the snippet."""
        self.frame = frames[-1].copy()
        with self.lock:
            return self.inner.score(frames)


class LiveRun:
    """One browser session's live run: the session in a thread, its events in a bounded queue, the tab's state."""

    def __init__(self, source: str, scorer: Scorer, threshold: float) -> None:
        self.source = source.strip()
        if not self.source:
            raise UserError("Enter a stream URL or a video file path first.")
        config = LiveConfig(source=self.source, window=WINDOW, threshold=threshold, clips=False, realtime=True,
                            status_every_s=0)
        self.scorer = FrameKeeper(ModelSnippetScorer(scorer, WINDOW), scorer.lock)
        self.events: queue.Queue[dict] = queue.Queue(maxsize=EVENT_QUEUE)
        self.stop_event = threading.Event()
        self._null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed when the thread ends)
        try:
            self.session = LiveSession(config, self.scorer, self.stop_event, self._null, self._null, self._push)
        except BaseException:
            self._null.close()
            raise
        self.threshold = self.session.threshold
        self.scores: deque[tuple[float, float, float]] = deque(maxlen=4096)  # (stream s, score, smoothed)
        self.alerts: list[dict] = []
        self.snippets = self.dropped_events = 0
        self.summary: LiveSummary | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="vad-live", daemon=True)

    def start(self) -> None:
        """Start scoring in the background."""
        self.thread.start()

    def _run(self) -> None:
        try:
            self.summary = self.session.run()
        except Exception as exc:  # the run fails, the server keeps serving
            log.exception("live run failed")
            self.error = error_message(exc)
        finally:
            self._null.close()

    def _push(self, event: dict) -> None:
        """``on_event``: queue the event for the UI, dropping the oldest when the UI is not polling."""
        while True:
            try:
                self.events.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.events.get_nowait()
                    self.dropped_events += 1
                except queue.Empty:
                    pass

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the run to end and wait for it (the session flushes and closes the open alert)."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    @property
    def running(self) -> bool:
        """Whether the background thread is still scoring."""
        return self.thread.is_alive()

    def drain(self) -> None:
        """Take the queued events into the tab's state (scores of the last ``HISTORY_S``, the alert list)."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            kind = event.get("event")
            if kind == "snippet":
                self.snippets += 1
                self.scores.append((event["stream_s"], event["score"], event["smoothed"]))
            elif kind == "alert_start":
                self.alerts.append(event)
            elif kind == "alert_end":
                self.alerts = [a for a in self.alerts if a.get("alert") != event.get("alert")] + [event]
        while self.scores and self.scores[0][0] < self.scores[-1][0] - HISTORY_S:
            self.scores.popleft()

    def state(self) -> dict:
        """A JSON summary of the run (for API clients)."""
        last = self.scores[-1] if self.scores else None
        ended = self.error or (self.summary.ended if self.summary else None)
        return {"source": self.source, "running": self.running, "snippets": self.snippets,
                "last_score": last[1] if last else None, "threshold": self.threshold, "alerts": len(self.alerts),
                "ended": ended, "dropped_events": self.dropped_events,
                "scores": [{"stream_s": t, "score": s, "smoothed": m} for t, s, m in self.scores]}


class LiveRegistry:
    """The server's live runs, one per browser session, at most ``limit`` running."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self.runs: dict[str, LiveRun] = {}
        self.lock = threading.Lock()

    def start(self, key: str, source: str, scorer: Scorer, threshold: float) -> LiveRun:
        """Stop ``key``'s run, then start one on ``source`` if fewer than ``limit`` others are running."""
        self.stop(key)
        with self.lock:
            if sum(run.running for run in self.runs.values()) >= self.limit:
                raise UserError(f"{self.limit} live streams are running on this server already; try again later.")
            run = self.runs[key] = LiveRun(source, scorer, threshold)
            run.start()
        return run

    def get(self, key: str) -> LiveRun | None:
        """``key``'s run (running or ended), if any."""
        with self.lock:
            return self.runs.get(key)

    def stop(self, key: str, forget: bool = False) -> LiveRun | None:
        """End ``key``'s run (``forget``: and drop it, as when the page closes)."""
        with self.lock:
            run = self.runs.pop(key, None) if forget else self.runs.get(key)
        if run is not None:
            run.stop()
        return run

    def stop_all(self) -> None:
        """End every run (the server is closing)."""
        for key in list(self.runs):
            self.stop(key, forget=True)


def _views(run: LiveRun | None, message: str | None = None) -> tuple:
    """Status, score curve, current frame, alert rows and state JSON of ``run``."""
    import pandas as pd

    if run is None:
        return message or IDLE, None, None, [], {"running": False}
    run.drain()
    rows = [(t, v, name) for t, s, m in run.scores for v, name in ((s, "score"), (m, "smoothed"))]
    if rows:
        rows += [(run.scores[0][0], run.threshold, "threshold"), (run.scores[-1][0], run.threshold, "threshold")]
    curve = pd.DataFrame(rows, columns=["stream_s", "score", "series"])
    alerts = [[a["alert"], f"{a.get('start_s', 0):.1f} s",
               f"{a['end_s']:.1f} s" if "end_s" in a else "open",
               round(a.get("duration_s", 0.0), 1) if "end_s" in a else "–",
               round(a.get("peak_score", 0.0), 3), a.get("prompt") or "–"] for a in run.alerts]
    state = run.state()
    if message:
        status = message
    elif run.error:
        status = status_error(run.error)
    else:
        last = f"{state['last_score']:.3f}" if state["last_score"] is not None else "–"
        where = "**live**" if run.running else f"ended: {state['ended']}"
        status = (f"{where} · {run.snippets} snippet(s) scored · last score **{last}** · threshold "
                  f"{run.threshold:.3g} · **{len(run.alerts)}** alert(s)")
    return status, curve, run.scorer.frame, alerts, state


def live_tab(app, scorer: Scorer, registry: LiveRegistry) -> None:
    """Lay out the Live tab's components and wire Start, Stop, the timer and closing the page (inside ``app``)."""
    threshold = scorer.config.segments.threshold
    gr.Markdown("Score a camera or stream as it arrives (as `vad watch` does): the curve shows the last "
                f"{HISTORY_S:.0f} s. One live stream per page; at most {registry.limit} on this server.")
    with gr.Row():
        source = gr.Textbox(label="stream URL or server file", scale=4,
                            placeholder="rtsp://camera/stream · http://host:8080/feed.ts · udp://@:1234 · /data/a.mp4")
        start = gr.Button("Start", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=1)
    status = gr.Markdown(IDLE, elem_id="live-status")
    with gr.Row(equal_height=False):
        curve = gr.LinePlot(x="stream_s", y="score", color="series", x_title="stream time (s)", y_lim=[0, 1],
                            label="anomaly score (last 60 s)", scale=3)
        frame = gr.Image(label="current frame (as the model sees it)", type="numpy", interactive=False, height=260,
                         scale=2)
    alerts = gr.Dataframe(headers=ALERT_HEADERS, label="alerts", interactive=False)
    state = gr.JSON(label="live run", visible=False)
    timer = gr.Timer(POLL_S, active=False)
    outputs = [status, curve, frame, alerts, state, timer]

    def on_start(url: str, request: gr.Request) -> tuple:
        """Start (or restart) this page's live run."""
        try:
            run = registry.start(request.session_hash, url or "", scorer, threshold)
        except Exception as exc:  # a bad source or too many runs: a message, the server keeps serving
            return (*_views(None, status_error(error_message(exc))), gr.Timer(active=False))
        return (*_views(run), gr.Timer(active=True))

    def on_tick(request: gr.Request) -> tuple:
        """Redraw from the queued events; the timer stops once the run has ended."""
        run = registry.get(request.session_hash)
        return (*_views(run), gr.Timer(active=run is not None and run.running))

    def on_stop(request: gr.Request) -> tuple:
        """End this page's live run."""
        run = registry.stop(request.session_hash)
        return (*_views(run), gr.Timer(active=False))

    def on_unload(request: gr.Request) -> None:
        """The page closed: end its run."""
        registry.stop(request.session_hash, forget=True)

    live = {"concurrency_limit": None, "show_progress": "hidden"}  # quick: never queued behind file scoring
    start.click(on_start, [source], outputs, api_name="live_start", **live)
    source.submit(on_start, [source], outputs, api_visibility="undocumented", **live)
    timer.tick(on_tick, None, outputs, api_name="live_poll", **live)
    stop.click(on_stop, None, outputs, api_name="live_stop", **live)
    app.unload(on_unload)
