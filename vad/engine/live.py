"""Live scoring of a camera or stream: the library behind ``vad watch``.

Threads: the reader (:class:`vad.features.stream.StreamReader`) cuts snippets into a bounded queue and feeds
the evidence ring; the caller's thread scores each snippet as it completes (features of its F frames via the
model's own extractor, then the model over a sliding context of the last W snippets, so the cost per snippet
does not grow with the stream) and drives alerts; the clip recorder and the webhook poster have a thread each.
Every event is a JSON line (stdout or ``events``); a status line with capture→score latency goes to stderr.
"""
from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from vad.engine.alerts import AlertTracker, EventLog, ScoredSnippet, Smoother, Webhook, iso_time
from vad.engine.evidence import CLIP_PART_SUFFIX, ClipRecorder, FrameRing
from vad.engine.process_memory import memory_mb, trim_heap
from vad.errors import VadError
from vad.features.stream import ReaderConfig, Snippet, StreamEnd, StreamReader, snippets_for
from vad.features.video import SnippetConfig
from vad.io import clean_stale_parts


@dataclass(frozen=True)
class LiveConfig:
    """Settings of a live scoring run."""

    source: str = ""  # webcam index ("0"), rtsp/rtmp/http(s)/udp/srt URL, or a video file (required)
    window: int = 64  # W: snippets of context the model sees (sliding, so per-snippet cost is constant)
    threshold: float | None = None  # alert level of the smoothed score; None = the model's calibrated one, else 0.5
    min_alert_s: float = 2.0  # the score must stay above (below) the threshold this long to start (end) an alert
    smoothing: int = 3  # moving average over this many snippet scores (1 = raw scores)
    pre_s: float = 5.0  # evidence clips start this long before the alert
    post_s: float = 5.0  # ... and end this long after it
    clips: bool = True  # write an evidence clip per alert
    clip_dir: str | None = None  # where clips go; None = beside the events file (or the current directory)
    clip_short_side: int = 360  # evidence frames are downscaled to this shorter side (bounds memory); 0 = native
    webhook: str | None = None  # URL that each alert_start / alert_end is POSTed to as JSON
    webhook_retries: int = 3  # retries per alert after a failed POST (exponential backoff from 1 s)
    events: str | None = None  # JSON-lines event log (appended); None = stdout
    snippet_events: bool = True  # one event per scored snippet (off: alerts, gaps and status only)
    when_behind: str = "skip-snippets"  # scorer behind: drop (the newest snippet) | skip-snippets (the oldest queued)
    queue_snippets: int = 4  # complete snippets that may wait for the scorer
    reconnect_backoff_s: float = 1.0  # first wait before reopening a lost stream (doubles per failed attempt)
    max_backoff_s: float = 30.0  # longest wait between reopen attempts
    max_reconnects: int = 10  # consecutive failed reopen attempts before giving up (-1 = never)
    stall_timeout_s: float = 10.0  # no frame for this long = a stalled stream, reopened
    realtime: bool = False  # file sources: pace at the native rate (otherwise read as fast as scored, no drops)
    status_every_s: float = 10.0  # status line on stderr this often (0 = only the final summary)
    max_stream_s: float | None = None  # stop after this much stream time (None = until the source ends)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (backbone and model)
    backbone: str | None = None  # override the checkpoint's open_clip model name (rarely needed)
    pretrained: str | None = None  # override the checkpoint's backbone weights (tag or file)

    def __post_init__(self) -> None:
        if self.window < 1 or self.smoothing < 1:
            raise VadError(f"`window` and `smoothing` must be >= 1, got {self.window}, {self.smoothing}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise VadError(f"`threshold` must be in [0, 1], got {self.threshold}")
        if min(self.min_alert_s, self.pre_s, self.post_s) < 0:
            raise VadError("`min_alert_s`, `pre_s` and `post_s` must be >= 0")

    def reader_config(self, snippets: SnippetConfig, short_side: int | None, pairs: bool = False) -> ReaderConfig:
        """The stream reader's share of these settings."""
        return ReaderConfig(self.source, snippets, short_side, self.queue_snippets, self.when_behind,
                            self.stall_timeout_s, self.reconnect_backoff_s, self.max_backoff_s, self.max_reconnects,
                            self.realtime, pairs)


@dataclass(frozen=True)
class SnippetScore:
    """The model's verdict on the newest snippet."""

    score: float  # anomaly score in [0, 1]
    prompt: str | None  # best-matching anomaly prompt (None without prompts)


class SnippetScorer(Protocol):
    """Anything that scores one snippet's sampled frames as it completes (the model, or a test stub)."""

    snippets: SnippetConfig  # S and F the scorer was trained with
    short_side: int | None  # sampled frames are resized so their shorter side is this
    pairs: bool  # wants each sampled frame followed by the next one (optical flow of the motion level)
    default_threshold: float | None  # calibrated threshold, if the model carries one

    def score(self, frames: np.ndarray) -> SnippetScore:
        """Score the newest snippet, frames ``(F, H, W, 3)`` (``(2F, ...)`` pairs) uint8 RGB, in context."""
        ...


class LatencyStats:
    """Capture→score latency of recent snippets (bounded) and the scorer's busy time."""

    def __init__(self, keep: int = 10_000) -> None:
        self.latencies: deque[float] = deque(maxlen=keep)
        self.busy_s = 0.0
        self.stream_s = 0.0

    def add(self, latency_s: float, busy_s: float, snippet_s: float) -> None:
        """Record one scored snippet."""
        self.latencies.append(latency_s)
        self.busy_s += busy_s
        self.stream_s += snippet_s

    def percentile_ms(self, q: float) -> float:
        """The q-th percentile latency in milliseconds (nan before the first snippet)."""
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")

    @property
    def rtf(self) -> float:
        """Real-time factor: scoring seconds per second of stream scored (< 1 keeps up, with 1 - rtf spare)."""
        return self.busy_s / self.stream_s if self.stream_s else float("nan")


@dataclass
class LiveSummary:
    """What a live run did (also the ``stop`` event)."""

    ended: str  # why the run stopped
    opened: bool  # whether the source was ever opened
    snippets: int  # snippets scored
    stream_s: float  # seconds of stream received
    wall_s: float  # seconds the run took
    alerts: int  # alerts raised
    clips: list[str]  # evidence clips written
    dropped_snippets: int  # snippets discarded because scoring was behind
    dropped_frames: int  # their frames
    reconnects: int  # successful reopens after a lost stream
    latency_p50_ms: float | None  # capture → score latency (None before the first snippet)
    latency_p95_ms: float | None
    rtf: float | None  # scoring seconds per stream second scored
    rss_start_mb: float  # resident memory at start (model loaded) and at the end
    rss_end_mb: float
    anon_start_mb: float | None  # its anonymous part (heap, stacks; None where unknown): what a leak would grow
    anon_end_mb: float | None
    webhook: dict | None  # sent / failed / dropped / attempts

    def line(self, final: bool = True) -> str:
        """The one-line human summary (``final=False``: the periodic status line, without the end reason)."""
        end = f"; ended: {self.ended}" if final else ""
        return (f"{self.snippets} snippets ({self.stream_s:.1f} s of stream in {self.wall_s:.1f} s), "
                f"{self.alerts} alert(s), latency p50 {_fmt(self.latency_p50_ms, '.0f')} ms "
                f"p95 {_fmt(self.latency_p95_ms, '.0f')} ms, rtf {_fmt(self.rtf, '.3f')}, "
                f"dropped {self.dropped_snippets} snippet(s), {self.reconnects} reconnect(s), "
                f"RSS {self.rss_start_mb:.0f} -> {self.rss_end_mb:.0f} MB (anonymous {_fmt(self.anon_start_mb, '.0f')} "
                f"-> {_fmt(self.anon_end_mb, '.0f')}){end}")


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _finite(x: float, digits: int) -> float | None:
    """``x`` rounded, or None for NaN (JSON has no NaN)."""
    return None if math.isnan(x) else round(x, digits)


TRIM_EVERY_S = 30.0  # seconds of stream scored between hand-backs of the C heap's free pages (see trim_heap)


def resolve_threshold(config: LiveConfig, scorer: SnippetScorer) -> float:
    """The explicit threshold, else the model's calibrated one, else 0.5."""
    if config.threshold is not None:
        return config.threshold
    return scorer.default_threshold if scorer.default_threshold is not None else 0.5


def clip_dir_for(config: LiveConfig) -> Path:
    """Where evidence clips go: ``clip_dir``, else beside the events file, else the current directory."""
    if config.clip_dir:
        return Path(config.clip_dir)
    return Path(config.events).resolve().parent if config.events else Path.cwd()


class LiveSession:
    """One live run: the reader, the scorer, alerts, evidence clips, the webhook and the event log wired up."""

    def __init__(self, config: LiveConfig, scorer: SnippetScorer, stop: threading.Event | None = None,
                 status: IO[str] | None = None, events: IO[str] | None = None,
                 on_event: Callable[[dict], None] | None = None) -> None:
        if not config.source:
            raise VadError("no source given: a webcam index, an rtsp/rtmp/http(s)/udp/srt URL, or a video file")
        self.config, self.scorer = config, scorer
        self.stop = stop or threading.Event()
        self.status = status or sys.stderr
        self.threshold = resolve_threshold(config, scorer)
        s = scorer.snippets.snippet_len
        self.ring = None
        if config.clips:  # pre-roll + the wait before an alert is declared + the queue's and smoothing's lag
            self.ring = FrameRing(config.pre_s + config.min_alert_s + 2.0, config.clip_short_side or None,
                                  extra_frames=(config.queue_snippets + config.smoothing + 2) * s)
        self.reader = StreamReader(config.reader_config(scorer.snippets, scorer.short_side, scorer.pairs),
                                   on_frame=self.ring.push if self.ring else None, on_event=self._event)
        self.log = EventLog(config.events, events)
        self.on_event = on_event  # also sees every event written (the web UI's live tab)
        self.clip_dir = clip_dir_for(config)
        if self.ring:  # clips a killed session left half-written (only those: the folder may be the user's own)
            clean_stale_parts(self.clip_dir, f".alert-*{CLIP_PART_SUFFIX}", require_pid=True)
        self.recorder = ClipRecorder(self.ring, self._write) if self.ring else None
        self.webhook = Webhook(config.webhook, config.webhook_retries) if config.webhook else None
        self.smoother = Smoother(config.smoothing)
        self.tracker: AlertTracker | None = None  # made at the first snippet, when the stream's fps is known
        self.latency = LatencyStats()
        self.scored = 0
        self.opened = False
        self._clips: dict[int, Path] = {}
        self.memory_start = memory_mb()
        self.started = time.perf_counter()
        self._next_status = self.started + config.status_every_s
        self._next_trim = TRIM_EVERY_S  # in seconds of stream scored: as often per snippet, live or accelerated

    def run(self) -> LiveSummary:
        """Score until the source ends, ``stop`` is set or KeyboardInterrupt; then flush and summarise."""
        describe = getattr(self.scorer, "describe", None)
        self._write({"event": "start", "time": iso_time(time.time()), "source": self.config.source,
                        "threshold": self.threshold, "model": describe() if describe else type(self.scorer).__name__,
                        "config": asdict(self.config)})
        self.reader.start()
        ended = "stopped"
        try:
            ended = self._loop()
        except KeyboardInterrupt:
            ended = "interrupted"
        finally:
            summary = self._shutdown(ended)
        return summary

    def _loop(self) -> str:
        while not self.stop.is_set():
            try:
                item = self.reader.queue.get(timeout=0.2)
            except queue.Empty:
                self._housekeeping()
                continue
            if isinstance(item, StreamEnd):
                self.opened = self.opened or item.opened
                return item.reason
            self.opened = True
            self._score(item)
            self._housekeeping()
            if self.config.max_stream_s is not None and item.end_frame / item.fps >= self.config.max_stream_s:
                return f"max stream time {self.config.max_stream_s:g} s reached"
        return "stopped"

    def _score(self, snip: Snippet) -> None:
        """Score one snippet, log it, feed the alert logic."""
        begun = time.perf_counter()
        result = self.scorer.score(snip.frames)
        done = time.perf_counter()
        self.latency.add(done - snip.captured_perf, done - begun, snip.snippet_len / snip.fps)
        self.scored += 1
        smoothed = self.smoother.push(result.score)
        if self.tracker is None:
            self.tracker = AlertTracker(self.threshold, snippets_for(self.config.min_alert_s, snip.fps,
                                                                     snip.snippet_len))
        if self.config.snippet_events:
            self._write({"event": "snippet", "time": iso_time(snip.captured), "snippet": snip.index,
                            "stream_s": round(snip.start_s, 3), "score": round(result.score, 4),
                            "smoothed": round(smoothed, 4), "prompt": result.prompt,
                            "latency_ms": round((done - snip.captured_perf) * 1000, 1)})
        alert = self.tracker.update(ScoredSnippet(snip.index, snip.first_frame, snip.end_frame, snip.fps, smoothed,
                                                  result.prompt, snip.captured))
        if alert is not None:
            self._alert(alert)
        if self.recorder is not None:  # an alert ends need * S frames after its last frame: stay behind by that
            ending = self.tracker.need * snip.snippet_len - round(self.config.post_s * snip.fps)
            self.recorder.advance(snip.end_frame - max(0, ending))

    def _alert(self, event: dict) -> None:
        """Start / finish the alert's evidence clip, then log and post the event."""
        fps, alert = self.reader.fps or 25.0, event["alert"]
        if self.recorder is not None and event["event"] == "alert_start":
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time()))
            self._clips[alert] = self.clip_dir / f"alert-{stamp}-{alert}.mp4"
            self.recorder.begin(alert, self._clips[alert], event["start_frame"] - round(self.config.pre_s * fps))
        if self.recorder is not None and event["event"] == "alert_end" and alert in self._clips:
            self.recorder.finish(alert, event["end_frame"] + round(self.config.post_s * fps))
            event["clip"] = str(self._clips[alert])
        self._write(event)
        if self.webhook is not None:
            self.webhook.post(event)

    def _write(self, event: dict) -> None:
        """Log one event, then hand it to ``on_event`` if given."""
        self.log.write(event)
        if self.on_event is not None:
            self.on_event(event)

    def _event(self, event: dict) -> None:
        """A reader event (stream_open / stream_lost / gap): stamped and logged."""
        self._write({"event": event.pop("event"), "time": iso_time(time.time()), **event})

    def _housekeeping(self) -> None:
        """Between snippets: the periodic status line, and the heap trim every ``TRIM_EVERY_S`` of stream."""
        self._maybe_status()
        if self.latency.stream_s >= self._next_trim:
            self._next_trim = self.latency.stream_s + TRIM_EVERY_S
            trim_heap()

    def _maybe_status(self) -> None:
        if self.config.status_every_s > 0 and time.perf_counter() >= self._next_status:
            self._next_status = time.perf_counter() + self.config.status_every_s
            open_alert = self.tracker is not None and self.tracker.open is not None
            print(f"vad watch: {self._summary('running').line(final=False)}{' [ALERT]' if open_alert else ''}",
                  file=self.status, flush=True)

    def _shutdown(self, ended: str) -> LiveSummary:
        """Stop the reader, close the open alert and its clip, drain the webhook, write the stop event."""
        self.reader.stop()
        if self.tracker is not None:
            event = self.tracker.close(f"run ended: {ended}")
            if event is not None:
                self._alert(event)
        if self.recorder is not None:
            self.recorder.close()
        if self.webhook is not None:
            self.webhook.close()
        summary = self._summary(ended)
        self._write({"event": "stop", "time": iso_time(time.time()), **asdict(summary)})
        self.log.close()
        print(f"vad watch: {summary.line()}", file=self.status, flush=True)
        return summary

    def _summary(self, ended: str) -> LiveSummary:
        st, lat = self.reader.stats, self.latency
        return LiveSummary(
            ended, self.opened or st.frames > 0, self.scored, round(st.frames / self.reader.fps, 3) if self.reader.fps
            else 0.0, round(time.perf_counter() - self.started, 3), self.tracker.alerts if self.tracker else 0,
            [str(p) for p in self.recorder.clips] if self.recorder else [], st.dropped_snippets, st.dropped_frames,
            st.reconnects, _finite(lat.percentile_ms(50), 1), _finite(lat.percentile_ms(95), 1), _finite(lat.rtf, 4),
            *self._memory(), asdict(self.webhook.stats) if self.webhook else None)

    def _memory(self) -> tuple[float, float, float | None, float | None]:
        """RSS at start and now, then its anonymous part at start and now (MB)."""
        (rss0, anon0), (rss, anon) = self.memory_start, memory_mb()
        return round(rss0, 1), round(rss, 1), _finite(anon0, 1), _finite(anon, 1)


def run_live(config: LiveConfig, scorer: SnippetScorer, stop: threading.Event | None = None,
             status: IO[str] | None = None, events: IO[str] | None = None,
             on_event: Callable[[dict], None] | None = None) -> LiveSummary:
    """Score ``config.source`` live until it ends, ``stop`` is set or KeyboardInterrupt; everything is flushed.

    ``events`` is where JSON lines go when ``config.events`` is None (default stdout); ``status`` gets the
    periodic status line and the final summary (default stderr); ``on_event(dict)``, if given, sees every event
    too, from the scoring thread.
    """
    return LiveSession(config, scorer, stop, status, events, on_event).run()
