"""`vad watch` (apps/watch.py) with a real trained model: live scores match offline scoring, bounded context,
SIGTERM mid-alert leaves a complete event log and clip, a source that never opens exits 1."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from apps.watch import add_watch_args, live_config_from_args, run_watch
from tests.media import write_video
from tests.vad.engine.live_helpers import (
    free_port,
    needs_ffmpeg,
    of,
    read_events,
    serve_http_ts,
    webhook_receiver,
    write_clip,
)
from vad.engine.live import LiveConfig, run_live
from vad.engine.live_model import ModelSnippetScorer

ROOT = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_watch_args(parser)
    return parser.parse_args(list(argv))


def test_arguments_map_onto_live_config():
    args = _parse("rtsp://cam/1", "--model", "m", "--threshold", "0.7", "--min-alert", "1.5", "--no-clips",
                  "--when-behind", "drop", "--max-reconnects", "-1", "--events", "out/ev.jsonl", "--device", "cpu")
    cfg = live_config_from_args(args)
    assert cfg == LiveConfig("rtsp://cam/1", threshold=0.7, min_alert_s=1.5, clips=False, when_behind="drop",
                             max_reconnects=-1, events="out/ev.jsonl", device="cpu")
    assert live_config_from_args(_parse("0", "--model", "m")).threshold is None  # the model's, else 0.5


def test_live_scores_match_offline_scoring_and_context_stays_bounded(trained_model, tmp_path):
    video = write_video(tmp_path / "v.mp4", num_frames=48, size=(96, 64))  # 6 snippets of S = 8, no resizing
    scorer = ModelSnippetScorer.from_model_dir(trained_model, window=16, device="cpu")
    assert scorer.pairs  # the test model reads the motion level: the reader keeps flow pairs
    offline = scorer.scorer.score(video).scores
    events = tmp_path / "events.jsonl"
    run_live(LiveConfig(str(video), window=16, threshold=1.0, clips=False, events=str(events), status_every_s=0),
             scorer)
    live = of(read_events(events), "snippet")
    assert len(live) == 6 and all(0 <= e["score"] <= 1 and e["prompt"] in scorer.scorer.prompts for e in live)
    assert live[-1]["score"] == pytest.approx(float(offline.snippets[-1]), abs=1e-3)  # same context: same score

    small = ModelSnippetScorer(scorer.scorer, window=3)  # the same loaded model, a shorter context
    run_live(LiveConfig(str(video), window=3, clips=False, events=str(tmp_path / "e2.jsonl"), status_every_s=0),
             small)
    assert len(small.context) == 3  # per-snippet cost does not grow with the stream


def test_source_that_never_opens_exits_1(trained_model, tmp_path, capsys):
    args = _parse(f"http://127.0.0.1:{free_port()}/cam", "--model", str(trained_model), "--device", "cpu",
                  "--max-reconnects", "0", "--events", str(tmp_path / "ev.jsonl"), "--status-every", "0")
    assert run_watch(args) == 1
    assert "could not open" in capsys.readouterr().err
    events = read_events(tmp_path / "ev.jsonl")
    assert events[0]["event"] == "start" and events[-1]["event"] == "stop" and not events[-1]["opened"]
    assert events[-1]["latency_p50_ms"] is None and "NaN" not in (tmp_path / "ev.jsonl").read_text()


@needs_ffmpeg
@pytest.mark.slow
def test_sigterm_mid_alert_leaves_complete_log_and_clip(trained_model, tmp_path):
    port = free_port()
    server = serve_http_ts(write_clip(tmp_path / "cam.mp4", 20.0), port)
    events = tmp_path / "log" / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    with webhook_receiver() as (url, received):
        watch = subprocess.Popen(
            [sys.executable, "-m", "apps.watch", f"http://127.0.0.1:{port}", "--model", str(trained_model),
             "--device", "cpu", "--threshold", "0", "--min-alert", "0.5", "--pre", "0.5", "--post", "30",
             "--events", str(events), "--webhook", url, "--backoff", "0.2", "--status-every", "0.5"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not (events.exists() and "alert_start" in events.read_text()):
                time.sleep(0.2)
            time.sleep(1.0)  # a little more stream inside the alert
            watch.send_signal(signal.SIGTERM)
            out, err = watch.communicate(timeout=30)
        finally:
            watch.kill()
            server.kill()
            server.wait()
        assert watch.returncode == 0, err
        assert "latency p50" in err  # status lines and the final summary on stderr
        log = read_events(events)  # every line is whole JSON
        assert log[0]["event"] == "start" and log[-1]["event"] == "stop" and log[-1]["ended"] == "stopped"
        end = of(log, "alert_end")[0]
        assert end["reason"] == "run ended: stopped" and end["duration_s"] > 0
        clip = of(log, "clip")[0]
        assert clip["path"] == end["clip"] and Path(clip["path"]).parent == events.parent
        cap = cv2.VideoCapture(clip["path"])
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        assert frames == clip["frames"] > 10
        assert [e["event"] for e in received] == ["alert_start", "alert_end"]
