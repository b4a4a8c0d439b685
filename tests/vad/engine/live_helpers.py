"""Helpers of the live-scoring tests: clips with planted bright spans, a brightness scorer, loopback servers."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from vad.engine.live import LiveConfig, SnippetScore
from vad.features.video import SnippetConfig

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed: it serves the loopback streams")
FPS = 10  # test clips: 10 frames/s, snippets of S = 5 frames = 0.5 s
S = 5
DARK, BRIGHT = 60, 200  # mean grey levels of normal and "anomalous" frames


def write_clip(path: Path, seconds: float, bright: Sequence[tuple[float, float]] = (), fps: int = FPS,
               size: tuple[int, int] = (128, 96)) -> Path:
    """An mp4v clip of noisy dark frames, bright inside the ``bright`` (start_s, end_s) spans; deterministic."""
    import cv2

    rng = np.random.default_rng(0)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(round(seconds * fps)):
        t = i / fps
        level = BRIGHT if any(a <= t < b for a, b in bright) else DARK
        noise = rng.integers(-15, 16, size=(h, w, 3))
        writer.write(np.clip(level + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


class BrightnessScorer:
    """Stub model: the score is the mean brightness of the snippet's sampled frames (planted anomalies = bright)."""

    snippets = SnippetConfig(S, 1)
    short_side = None
    pairs = False
    default_threshold = None

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def score(self, frames: np.ndarray) -> SnippetScore:
        """Mean brightness in [0, 1]; sleeps ``delay_s`` first (a slow model)."""
        if self.delay_s:
            threading.Event().wait(self.delay_s)
        self.calls += 1
        return SnippetScore(float(frames.mean() / 255.0), "bright light")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_http_ts(clip: Path, port: int) -> subprocess.Popen:
    """ffmpeg serving ``clip`` at its native rate as MPEG-TS over HTTP on 127.0.0.1:port (one client)."""
    return subprocess.Popen([FFMPEG, "-loglevel", "error", "-re", "-i", str(clip), "-c", "copy", "-bsf:v",
                             "dump_extra", "-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}"],
                            stdin=subprocess.DEVNULL)


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP server collecting POSTed JSON bodies: yields (url, received)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def live_config(tmp_path: Path, source: str, **overrides) -> LiveConfig:
    """Settings sized for short test clips: 1 s to start/end an alert, 1 s pre/post roll, fast reconnects."""
    base = dict(source=source, threshold=0.5, min_alert_s=1.0, smoothing=1, pre_s=1.0, post_s=1.0,
                events=str(tmp_path / "events.jsonl"), reconnect_backoff_s=0.2, max_reconnects=2,
                stall_timeout_s=3.0, status_every_s=0, window=8)
    base.update(overrides)
    return LiveConfig(**base)


def read_events(path: Path) -> list[dict]:
    """Every line of a JSON-lines event log (each must parse)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def of(events: list[dict], kind: str) -> list[dict]:
    """The events of one kind."""
    return [e for e in events if e["event"] == kind]


def to_mpegts(clip: Path, out: Path) -> bytes:
    """``clip`` remuxed to MPEG-TS bytes (what an HTTP camera sends)."""
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(clip), "-c", "copy", "-bsf:v", "dump_extra",
                    "-f", "mpegts", str(out)], check=True)
    return out.read_bytes()


@contextmanager
def stalling_server(first: bytes, then: bytes) -> Iterator[str]:
    """HTTP on 127.0.0.1: the first client gets ``first`` and then nothing (a stalled camera, connection kept
    open); the second gets ``then`` and the connection closes; later ones get 404 (the camera is gone)."""
    release = threading.Event()
    clients: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            clients.append(1)
            if len(clients) > 2:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            self.wfile.write(first if len(clients) == 1 else then)
            self.wfile.flush()
            if len(clients) == 1:
                release.wait(30)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cam.ts"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
