"""Live alerting: score smoothing, alerts with hysteresis, the JSON-lines event log and the webhook poster.

Pure state machines (:class:`Smoother`, :class:`AlertTracker`) decide; :class:`EventLog` and :class:`Webhook`
deliver. The webhook posts from its own thread through a bounded queue, so a slow or dead receiver never
blocks scoring: failures are retried with backoff, then logged and counted, never raised.
"""
from __future__ import annotations

import json
import logging
import math
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


def iso_time(t: float) -> str:
    """Wall-clock seconds → ISO-8601 UTC with milliseconds (the ``time`` field of every event)."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Smoother:
    """Moving average of the last ``k`` snippet scores (k = 1: the raw score)."""

    def __init__(self, k: int) -> None:
        self._recent: deque[float] = deque(maxlen=max(1, k))

    def push(self, score: float) -> float:
        """Add a score; the smoothed value."""
        self._recent.append(score)
        return sum(self._recent) / len(self._recent)


@dataclass
class ScoredSnippet:
    """What the alert logic needs of one scored snippet."""

    index: int  # snippet index k
    first_frame: int  # stream frame of its first frame
    end_frame: int  # one past its last frame
    fps: float  # stream frame rate
    smoothed: float  # smoothed score (compared with the threshold)
    prompt: str | None  # best-matching anomaly prompt
    captured: float  # wall clock of its last frame


@dataclass
class _Open:
    """An alert in progress."""

    alert: int
    first: ScoredSnippet  # first snippet of the run above the threshold
    last_above: ScoredSnippet  # latest snippet above the threshold
    peak: float = -math.inf  # highest smoothed score so far
    total: float = 0.0  # sum of the smoothed scores (running sums, not a list: an alert may last for days)
    count: int = 0  # snippets counted
    prompts: Counter = field(default_factory=Counter)  # best prompt -> snippets (bounded by the prompt list)


class AlertTracker:
    """Hysteresis over smoothed scores: ``alert_start`` once ``need`` consecutive snippets are >= threshold,
    ``alert_end`` once ``need`` consecutive snippets are below it (so a flicker neither starts nor ends one)."""

    def __init__(self, threshold: float, need: int) -> None:
        self.threshold = threshold
        self.need = max(1, need)
        self.alerts = 0
        self.open: _Open | None = None
        self._run: list[ScoredSnippet] = []  # current run on the other side of the threshold

    def update(self, snip: ScoredSnippet) -> dict | None:
        """Feed one snippet; the ``alert_start`` / ``alert_end`` event it causes, if any."""
        above = snip.smoothed >= self.threshold
        if self.open is None:
            self._run = self._run + [snip] if above else []
            if len(self._run) < self.need:
                return None
            self.alerts += 1
            self.open = _Open(self.alerts, self._run[0], snip)
            for s in self._run:
                self._record(s)
            self._run = []
            return self._start_event(snip)
        if above:
            self._run = []
            self.open.last_above = snip
            self._record(snip)
            return None
        self._run.append(snip)
        return self.close("below threshold", snip.captured) if len(self._run) >= self.need else None

    def close(self, reason: str, now: float | None = None) -> dict | None:
        """End the open alert (also at shutdown); its ``alert_end`` event, or None if none is open."""
        if self.open is None:
            return None
        o, self.open, self._run = self.open, None, []
        first, last = o.first, o.last_above
        return {"event": "alert_end", "alert": o.alert, "time": iso_time(now or time.time()),
                "start_time": iso_time(first.captured - (first.end_frame - first.first_frame) / first.fps),
                "start_s": _s(first.first_frame, first.fps), "end_s": _s(last.end_frame, last.fps),
                "duration_s": round((last.end_frame - first.first_frame) / last.fps, 3),
                "start_frame": first.first_frame, "end_frame": last.end_frame,
                "start_snippet": first.index, "end_snippet": last.index,
                "peak_score": round(o.peak, 4), "mean_score": round(o.total / o.count, 4),
                "prompt": o.prompts.most_common(1)[0][0] if o.prompts else None, "threshold": self.threshold,
                "reason": reason}

    def _record(self, snip: ScoredSnippet) -> None:
        assert self.open is not None
        self.open.peak = max(self.open.peak, snip.smoothed)
        self.open.total += snip.smoothed
        self.open.count += 1
        if snip.prompt is not None:
            self.open.prompts[snip.prompt] += 1

    def _start_event(self, snip: ScoredSnippet) -> dict:
        o = self.open
        assert o is not None
        return {"event": "alert_start", "alert": o.alert, "time": iso_time(snip.captured),
                "start_s": _s(o.first.first_frame, o.first.fps), "start_frame": o.first.first_frame,
                "start_snippet": o.first.index, "snippet": snip.index, "score": round(snip.smoothed, 4),
                "prompt": o.prompts.most_common(1)[0][0] if o.prompts else None, "threshold": self.threshold}


def _s(frame: int, fps: float) -> float:
    return round(frame / fps, 3)


class EventLog:
    """Events as JSON lines, to a file (appended, flushed per line) or a stream; safe to write from any thread."""

    def __init__(self, path: str | Path | None, stream: IO[str] | None = None) -> None:
        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("a", encoding="utf-8") if self.path else (stream or sys.stdout)
        self._lock = threading.Lock()
        self.count = 0

    def write(self, event: dict) -> None:
        """Append one event (one line, flushed at once so a reader or a crash sees whole lines)."""
        line = json.dumps(event, default=str) + "\n"
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(line)
            self._fh.flush()
            self.count += 1

    def close(self) -> None:
        """Flush to disk and close the file (a stream such as stdout is only flushed)."""
        with self._lock:
            if self.path is None:
                self._fh.flush()
            elif not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()


@dataclass
class WebhookStats:
    """What the poster did."""

    sent: int = 0  # events delivered (2xx answer)
    failed: int = 0  # events given up on after every retry
    dropped: int = 0  # events not queued because the queue was full
    attempts: int = 0  # POSTs tried


class Webhook:
    """POSTs events as JSON to ``url`` from a background thread; retries with exponential backoff, never raises."""

    _DONE = object()

    def __init__(self, url: str, retries: int = 3, backoff_s: float = 1.0, timeout_s: float = 5.0,
                 queue_size: int = 64) -> None:
        self.url, self.retries, self.backoff_s, self.timeout_s = url, retries, backoff_s, timeout_s
        self.stats = WebhookStats()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="vad-webhook")
        self._thread.start()

    def post(self, event: dict) -> None:
        """Queue ``event`` for delivery; returns at once (a full queue drops it, with a warning)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.stats.dropped += 1
            log.warning("webhook %s: queue full, event %s dropped", self.url, event.get("event"))

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within ``timeout_s``, then stop (retry waits are cut short)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._queue.put(self._DONE, timeout=0.05)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()
        self._thread.join(1.0)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is self._DONE:
                return
            self._deliver(event)

    def _deliver(self, event: dict) -> None:
        body = json.dumps(event, default=str).encode("utf-8")
        delay, error = self.backoff_s, ""
        for attempt in range(self.retries + 1):
            if attempt:
                if self._closing.wait(delay):
                    break
                delay *= 2
            self.stats.attempts += 1
            try:
                request = urllib.request.Request(self.url, data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    if 200 <= response.status < 300:
                        self.stats.sent += 1
                        return
                    error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                error = str(getattr(exc, "reason", exc))
            log.debug("webhook %s attempt %d failed: %s", self.url, attempt + 1, error)
        self.stats.failed += 1
        log.warning("webhook %s: %s not delivered after %d attempt(s): %s", self.url, event.get("event"),
                    self.retries + 1, error)
