"""``vad watch SOURCE --model DIR``: score a camera or stream live, alert, keep evidence clips.

A front end over :func:`vad.engine.live.run_live`: ``add_watch_args`` declares the options (argparse),
``run_watch`` runs them, or a ready :class:`LiveConfig` from the config-generated CLI. SIGTERM and Ctrl-C end
the run cleanly: the open alert is closed, its clip and the event log are flushed, exit 0.
``python -m apps.watch`` runs it standalone until the verb is registered in ``apps/cli.py``.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from apps.cli_parser import flags_for_fields
from vad.errors import VadError

if TYPE_CHECKING:
    from vad.engine.live import LiveConfig

EXIT_OK, EXIT_NO_SOURCE, EXIT_USAGE = 0, 1, 2


def add_watch_args(p: argparse.ArgumentParser) -> None:
    """The options of ``vad watch`` (defaults are :class:`vad.engine.live.LiveConfig`'s)."""
    p.add_argument("source", help="webcam index (0), rtsp/rtmp/http(s)/udp/srt URL, or a video file")
    p.add_argument("--model", type=Path, required=True, help="model directory written by `vad train`")
    p.add_argument("--threshold", type=float, help="alert level of the smoothed score (default: the model's "
                                                   "calibrated threshold if it has one, else 0.5)")
    p.add_argument("--window", type=int, default=64, help="W: snippets of context the model sees (64)")
    p.add_argument("--min-alert", type=float, default=2.0, help="seconds above (below) threshold to start (end) "
                                                                "an alert (2.0)")
    p.add_argument("--smoothing", type=int, default=3, help="moving average over this many snippets (3)")
    p.add_argument("--events", type=Path, help="JSON-lines event log, appended (default: stdout)")
    p.add_argument("--no-snippet-events", action="store_true", help="log alerts, gaps and status only")
    p.add_argument("--webhook", help="URL each alert is POSTed to as JSON (background, retried)")
    g = p.add_argument_group("evidence clips")
    g.add_argument("--pre", type=float, default=5.0, help="seconds before the alert (5)")
    g.add_argument("--post", type=float, default=5.0, help="seconds after the alert (5)")
    g.add_argument("--clip-dir", type=Path, help="default: beside --events, else the current directory")
    g.add_argument("--clip-size", type=int, default=360, help="shorter side of clip frames (360; 0 = native)")
    g.add_argument("--no-clips", action="store_true", help="write no evidence clips")
    g = p.add_argument_group("stream")
    g.add_argument("--when-behind", default="skip-snippets", choices=["drop", "skip-snippets"],
                   help="scoring slower than the stream: drop the newest snippet, or skip the oldest queued ones")
    g.add_argument("--queue", type=int, default=4, help="snippets that may wait for the scorer (4)")
    g.add_argument("--backoff", type=float, default=1.0, help="first wait before reopening a lost stream (s)")
    g.add_argument("--max-reconnects", type=int, default=10, help="failed reopen attempts in a row before "
                                                                  "giving up (-1: never)")
    g.add_argument("--stall-timeout", type=float, default=10.0, help="no frame for this long = stalled (s)")
    g.add_argument("--realtime", action="store_true", help="pace a file source at its native frame rate")
    g.add_argument("--max-stream", type=float, help="stop after this many seconds of stream")
    g.add_argument("--status-every", type=float, default=10.0, help="status line on stderr every N s (0: off)")
    g = p.add_argument_group("device and backbone (default: the ones recorded in the model)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--backbone", help="open_clip model name override")
    g.add_argument("--pretrained", help="weights (tag or file) when the model's are not on this machine")


# LiveConfig fields whose flag here has another name (the rest are named alike; see live_config_from_args)
WATCH_FLAGS = {"min_alert_s": "--min-alert", "pre_s": "--pre", "post_s": "--post", "queue_snippets": "--queue",
               "reconnect_backoff_s": "--backoff", "stall_timeout_s": "--stall-timeout",
               "status_every_s": "--status-every", "max_stream_s": "--max-stream", "clip_short_side": "--clip-size",
               "clips": "--no-clips", "snippet_events": "--no-snippet-events"}


def live_config_from_args(args: argparse.Namespace) -> LiveConfig:
    """Build a :class:`LiveConfig` from parsed ``vad watch`` arguments."""
    from vad.engine.live import LiveConfig

    return LiveConfig(
        source=str(args.source), window=args.window, threshold=args.threshold, min_alert_s=args.min_alert,
        smoothing=args.smoothing, pre_s=args.pre, post_s=args.post, clips=not args.no_clips,
        clip_dir=str(args.clip_dir) if args.clip_dir else None, clip_short_side=args.clip_size,
        webhook=args.webhook, events=str(args.events) if args.events else None,
        snippet_events=not args.no_snippet_events, when_behind=args.when_behind, queue_snippets=args.queue,
        reconnect_backoff_s=args.backoff, max_reconnects=args.max_reconnects, stall_timeout_s=args.stall_timeout,
        realtime=args.realtime, status_every_s=args.status_every, max_stream_s=args.max_stream, device=args.device,
        backbone=args.backbone, pretrained=args.pretrained)


def run_watch(args: argparse.Namespace, config: LiveConfig | None = None) -> int:
    """Run ``vad watch`` on model ``args.model`` with ``config`` (default: built from ``args``): 0 when it ran
    (also after SIGTERM / Ctrl-C), 1 if the source never opened."""
    from vad.engine.live import run_live
    from vad.engine.live_model import ModelSnippetScorer

    config = config or live_config_from_args(args)
    scorer = ModelSnippetScorer.from_model_dir(args.model, config.window, config.device, config.backbone,
                                               config.pretrained)
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set()) if in_main else None
    try:
        summary = run_live(config, scorer, stop)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    if not summary.opened:
        print(f"vad: error: {config.source}: {summary.ended}", file=sys.stderr)
        return EXIT_NO_SOURCE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m apps.watch SOURCE --model DIR ...`` (the same as ``vad watch`` once registered)."""
    parser = argparse.ArgumentParser(prog="vad watch", description="score a camera or stream live")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    add_watch_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="vad: %(message)s")
    try:
        return run_watch(args)
    except VadError as exc:
        flags = {action.dest: max(action.option_strings, key=len) for action in parser._actions
                 if action.option_strings}  # the long form of each option
        print(f"vad: error: {flags_for_fields(str(exc), {**flags, **WATCH_FLAGS})}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
