"""Live scoring: alerts with hysteresis, evidence clips, webhook, drop policy and reconnects, over real streams.

Streams are real: ffmpeg serves MPEG-TS over HTTP on 127.0.0.1 at the clip's native rate and ``run_live`` reads
it through OpenCV's FFmpeg backend. Scores are made controllable with a stub model whose score is the frames'
brightness, so a clip with a planted bright span must raise exactly one alert covering it, a dark clip none.
"""
from __future__ import annotations

import http.server
import pickle
import platform
import threading
import time

import cv2
import numpy as np
import pytest

from tests.vad.engine.live_helpers import (
    FPS,
    BrightnessScorer,
    free_port,
    live_config,
    needs_ffmpeg,
    of,
    read_events,
    serve_http_ts,
    stalling_server,
    to_mpegts,
    webhook_receiver,
    write_clip,
)
from vad.engine.alerts import AlertTracker, ScoredSnippet, Smoother, Webhook
from vad.engine.live import LiveConfig, run_live
from vad.engine.process_memory import memory_mb, trim_heap
from vad.errors import VadError, VideoError


def _snip(k: int, score: float) -> ScoredSnippet:
    return ScoredSnippet(k, 5 * k, 5 * k + 5, 10.0, score, "fighting" if score > 0.5 else None, 1000.0 + k)


def test_alert_hysteresis_ignores_flicker_and_covers_the_run():
    tracker = AlertTracker(0.5, need=3)
    scores = [0.1, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9, 0.2, 0.2, 0.2, 0.9, 0.9]
    events = [(k, e) for k, s in enumerate(scores) if (e := tracker.update(_snip(k, s)))]
    assert [(k, e["event"]) for k, e in events] == [(6, "alert_start"), (12, "alert_end")]
    start, end = events[0][1], events[1][1]
    assert start["start_snippet"] == 4 and start["start_frame"] == 20 and start["start_s"] == 2.0
    assert end["start_snippet"] == 4 and end["end_snippet"] == 9 and end["end_frame"] == 50
    assert end["duration_s"] == 3.0 and end["prompt"] == "fighting" and end["peak_score"] == 0.9
    assert end["mean_score"] == 0.9
    assert tracker.close("shutdown") is None  # nothing open
    assert Smoother(3).push(0.0) == 0.0 and Smoother(1).push(0.7) == 0.7


def test_open_alert_is_closed_at_shutdown():
    tracker = AlertTracker(0.5, need=1)
    assert tracker.update(_snip(0, 0.8))["event"] == "alert_start"
    end = tracker.close("run ended: stopped")
    assert end["event"] == "alert_end" and end["reason"] == "run ended: stopped" and end["end_frame"] == 5


def test_a_long_alert_keeps_bounded_state():
    """An alert that lasts for hours holds running sums, not its scores: its state does not grow with it."""
    tracker = AlertTracker(0.5, need=1)
    sizes = []
    for k in range(20_000):
        tracker.update(_snip(k, 0.6 + 0.3 * (k % 2)))
        if k in (100, 19_999):
            sizes.append(len(pickle.dumps(tracker)))
    assert sizes[1] - sizes[0] < 64, sizes
    end = tracker.close("shutdown")
    assert end["peak_score"] == 0.9 and end["mean_score"] == pytest.approx(0.75)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_heap_trim_reaches_glibc():
    assert trim_heap()


@pytest.mark.skipif(platform.system() != "Linux", reason="/proc")
def test_memory_is_read_with_its_anonymous_part():
    rss, anon = memory_mb()
    assert 0 < anon < rss


def test_config_rejects_bad_values(tmp_path):
    with pytest.raises(VadError, match="threshold"):
        LiveConfig("x.mp4", threshold=1.5)
    with pytest.raises(VadError, match="no source"):
        run_live(LiveConfig(), BrightnessScorer())
    with pytest.raises(VideoError, match="when_behind"):
        run_live(live_config(tmp_path, str(write_clip(tmp_path / "a.mp4", 1)), when_behind="later"),
                 BrightnessScorer())
    with pytest.raises(VideoError, match="not a webcam index"):
        run_live(live_config(tmp_path, str(tmp_path / "missing.mp4")), BrightnessScorer())


def test_webhook_retries_then_gives_up_without_blocking(caplog):
    hits: list[int] = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(1)
            self.send_response(500 if len(hits) < 3 else 200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/", retries=3, backoff_s=0.05)
        hook.post({"event": "alert_start"})
        hook.close(timeout_s=5)
        assert hook.stats.sent == 1 and hook.stats.attempts == 3 and len(hits) == 3
    finally:
        server.shutdown()
        server.server_close()
    dead = Webhook(f"http://127.0.0.1:{free_port()}/", retries=1, backoff_s=0.05)
    began = time.perf_counter()
    dead.post({"event": "alert_end"})
    assert time.perf_counter() - began < 0.05  # posting never waits for the network
    dead.close(timeout_s=5)
    assert dead.stats.failed == 1 and dead.stats.sent == 0
    assert "not delivered after 2 attempt(s)" in caplog.text


@pytest.mark.parametrize("policy", ["drop", "skip-snippets"])
def test_scoring_slower_than_the_stream_drops_by_policy(tmp_path, policy):
    clip = write_clip(tmp_path / "clip.mp4", 2.0)  # 4 snippets, one every 0.5 s
    scorer = BrightnessScorer(delay_s=0.9)
    summary = run_live(live_config(tmp_path, str(clip), realtime=True, queue_snippets=1, when_behind=policy),
                       scorer)
    events = read_events(tmp_path / "events.jsonl")
    scored = [e["snippet"] for e in of(events, "snippet")]
    assert summary.dropped_snippets >= 1 and summary.dropped_frames == 5 * summary.dropped_snippets
    assert len(scored) + summary.dropped_snippets == 4 and summary.snippets == len(scored) == scorer.calls
    assert of(events, "stop")[0]["dropped_snippets"] == summary.dropped_snippets
    if policy == "skip-snippets":
        assert scored[-1] == 3  # the newest snippet is kept, older queued ones give way


@needs_ffmpeg
@pytest.mark.slow
def test_planted_anomaly_over_http_raises_one_alert_with_clip_and_webhook(tmp_path):
    clip = write_clip(tmp_path / "planted.mp4", 6.0, bright=[(2.0, 4.0)])
    stale = tmp_path / ".alert-earlier.999999999.x1y2z3w4.part.mp4"  # a clip a killed session left half-written
    stale.write_bytes(b"half a clip")
    port = free_port()
    server = serve_http_ts(clip, port)
    try:
        with webhook_receiver() as (url, received):
            summary = run_live(live_config(tmp_path, f"http://127.0.0.1:{port}", webhook=url, post_s=0.5),
                               BrightnessScorer())
    finally:
        server.kill()
        server.wait()
    events = read_events(tmp_path / "events.jsonl")
    assert [e["event"] for e in events if e["event"].startswith("alert")] == ["alert_start", "alert_end"]
    start, end = of(events, "alert_start")[0], of(events, "alert_end")[0]
    assert start["start_s"] == pytest.approx(2.0, abs=0.5) and end["end_s"] == pytest.approx(4.0, abs=0.5)
    assert [e["event"] for e in received] == ["alert_start", "alert_end"] and received[1]["alert"] == 1
    assert summary.webhook["sent"] == 2 and summary.alerts == 1 and summary.opened
    assert 0 <= summary.latency_p50_ms <= summary.latency_p95_ms < 2000

    assert not stale.exists() and not list(tmp_path.glob(".*.part*"))  # its own temp files renamed, the dead one gone
    clip_event = of(events, "clip")[0]
    assert clip_event["path"] == end["clip"] == summary.clips[0] and clip_event["lost_frames"] == 0
    assert clip_event["start_s"] == pytest.approx(end["start_s"] - 1.0, abs=0.05)  # 1 s pre-roll
    assert clip_event["end_s"] == pytest.approx(end["end_s"] + 0.5, abs=0.05)  # 0.5 s post-roll, though the
    # alert only ended 1 s after its last bright frame: the recorder stays behind the scorer by the difference
    cap = cv2.VideoCapture(clip_event["path"])
    means = []
    while (frame := cap.read())[0]:
        means.append(frame[1].mean())
    cap.release()
    assert len(means) == clip_event["frames"] == round((clip_event["end_s"] - clip_event["start_s"]) * FPS)
    bright = np.array(means) > 130
    assert not bright[:5].any() and not bright[-5:].any()  # dark pre- and post-roll around...
    assert bright.sum() == pytest.approx(20, abs=5)  # ...the 2 s bright span
    assert not list(tmp_path.glob(".*.part*"))  # no temp file left behind


@needs_ffmpeg
@pytest.mark.slow
def test_normal_stream_raises_no_alert(tmp_path):
    port = free_port()
    server = serve_http_ts(write_clip(tmp_path / "normal.mp4", 4.0), port)
    try:
        summary = run_live(live_config(tmp_path, f"http://127.0.0.1:{port}"), BrightnessScorer())
    finally:
        server.kill()
        server.wait()
    events = read_events(tmp_path / "events.jsonl")
    assert not [e for e in events if e["event"].startswith("alert") or e["event"] == "clip"]
    assert summary.alerts == 0 and len(of(events, "snippet")) == summary.snippets >= 6
    assert all(e["score"] < 0.5 for e in of(events, "snippet"))


@needs_ffmpeg
@pytest.mark.slow
def test_stream_killed_midway_is_reopened_and_the_gap_logged(tmp_path):
    port = free_port()
    first = serve_http_ts(write_clip(tmp_path / "a.mp4", 6.0), port)
    events_path = tmp_path / "events.jsonl"
    result = {}
    runner = threading.Thread(target=lambda: result.update(
        summary=run_live(live_config(tmp_path, f"http://127.0.0.1:{port}"), BrightnessScorer())))
    runner.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (not events_path.exists() or '"snippet"' not in events_path.read_text()):
        time.sleep(0.1)
    time.sleep(1.0)
    first.kill()  # the camera dies mid-stream
    first.wait()
    time.sleep(0.3)
    second = serve_http_ts(write_clip(tmp_path / "b.mp4", 2.0, bright=[(0, 2)]), port)  # ... and comes back
    runner.join(30)
    second.kill()
    second.wait()
    assert not runner.is_alive()
    events = read_events(events_path)
    kinds = [e["event"] for e in events]
    lost, gap = kinds.index("stream_lost"), kinds.index("gap")
    assert lost < gap and events[gap]["seconds"] > 0 and events[gap]["frame"] == events[lost]["frame"]
    snippets = of(events, "snippet")
    before = [e for e in snippets if e["stream_s"] < events[gap]["stream_s"]]
    after = [e for e in snippets if e["stream_s"] >= events[gap]["stream_s"]]
    assert before and after and all(e["score"] > 0.5 for e in after)  # the second stream was scored
    assert [e["snippet"] for e in snippets] == sorted({e["snippet"] for e in snippets})
    summary = result["summary"]
    assert summary.reconnects >= 1 and "could not open" in summary.ended and kinds[-1] == "stop"


@needs_ffmpeg
@pytest.mark.slow
def test_stalled_stream_times_out_and_is_reopened(tmp_path):
    dark = to_mpegts(write_clip(tmp_path / "a.mp4", 3.0), tmp_path / "a.ts")
    bright = to_mpegts(write_clip(tmp_path / "b.mp4", 2.0, bright=[(0, 2)]), tmp_path / "b.ts")
    with stalling_server(dark, bright) as url:
        began = time.monotonic()
        summary = run_live(live_config(tmp_path, url, stall_timeout_s=1.0, max_reconnects=1), BrightnessScorer())
    events = read_events(tmp_path / "events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds.index("stream_lost") < kinds.index("gap") and summary.reconnects == 1
    assert time.monotonic() - began < 15  # the stall was cut by the read timeout, not waited out
    scores = [e["score"] for e in of(events, "snippet")]
    assert min(scores) < 0.5 < max(scores)  # both connections' frames were scored
