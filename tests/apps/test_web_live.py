"""`vad serve`'s Live tab driven through gradio_client: a clip served over loopback HTTP by ffmpeg (MPEG-TS at its
native rate) is scored live with the tiny trained model; Start, a few polls, Stop; the server-wide limit holds."""
from __future__ import annotations

import os
import time

import pytest

from tests.vad.engine.live_helpers import needs_ffmpeg, serve_http_ts, write_clip

pytest.importorskip("gradio")
from gradio_client import Client

pytestmark = needs_ffmpeg


@pytest.fixture(scope="module")
def live_server(trained_model, tmp_path_factory, free_port):
    """The app over the tiny trained model (no examples) on a free loopback port; closed after the module."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from apps.web import build_app, close_app, launch
    from vad.engine.score import ScoreConfig, Scorer
    from vad.engine.segments import SegmentConfig

    scorer = Scorer(trained_model, ScoreConfig(SegmentConfig(0.3), device="cpu"))
    app = build_app(scorer, [], max_upload_mb=1, work_dir=tmp_path_factory.mktemp("serve-live"))
    port = free_port()
    launch(app, "127.0.0.1", port, block=False, quiet=True)
    yield {"url": f"http://127.0.0.1:{port}/", "app": app}
    close_app(app)


def _call(client: Client, *args: str, api_name: str) -> tuple:
    """One call of the tab's API: status, curve, frame, alerts and state (the timer's value dropped)."""
    return tuple(client.predict(*args, api_name=api_name))[:5]


def _poll_until(client: Client, done, timeout_s: float = 20.0) -> dict:
    """Poll the tab until ``done(state)`` or the timeout; the last state."""
    deadline = time.monotonic() + timeout_s
    while True:
        *_, state = _call(client, api_name="/live_poll")
        if done(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_live_tab_scores_a_stream_and_stops(live_server, tmp_path, free_port):
    clip = write_clip(tmp_path / "cam.mp4", 12.0)
    port = free_port()
    ffmpeg = serve_http_ts(clip, port)
    try:
        client = Client(live_server["url"], verbose=False)
        status, _curve, _frame, _alerts, state = _call(client, f"http://127.0.0.1:{port}", api_name="/live_start")
        assert state["running"] and "live" in status
        state = _poll_until(client, lambda s: s["snippets"] >= 3)
        assert state["snippets"] >= 3 and state["running"], state
        assert all(0.0 <= p["score"] <= 1.0 for p in state["scores"]) and state["last_score"] is not None
        status, curve, frame, _alerts, _ = _call(client, api_name="/live_poll")
        assert {"score", "smoothed", "threshold"} <= {row[-1] for row in curve["data"]}, curve
        assert frame is not None  # the newest snippet's frame
        status, *_, state = _call(client, api_name="/live_stop")
        assert not state["running"] and state["ended"] == "stopped" and "ended: stopped" in status
        assert not live_server["app"].vad_live.get(client.session_hash).running
    finally:
        ffmpeg.kill()
        ffmpeg.wait()


def test_live_runs_are_bounded_per_page_and_per_server(live_server, tmp_path):
    clip = str(write_clip(tmp_path / "long.mp4", 30.0))  # a server file, paced at its native rate
    clients = [Client(live_server["url"], verbose=False) for _ in range(3)]
    try:
        for client in clients[:2]:
            *_, state = _call(client, clip, api_name="/live_start")
            assert state["running"]
        *_, state = _call(clients[0], clip, api_name="/live_start")  # a new Start replaces the page's run
        assert state["running"] and sum(r.running for r in live_server["app"].vad_live.runs.values()) == 2
        status, *_, state = _call(clients[2], clip, api_name="/live_start")
        assert "2 live streams are running" in status and not state["running"]
        status, *_ = _call(clients[0], "", api_name="/live_start")
        assert "Enter a stream URL" in status
    finally:
        for client in clients:
            _call(client, api_name="/live_stop")
    assert not any(run.running for run in live_server["app"].vad_live.runs.values())
