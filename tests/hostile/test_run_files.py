"""The files runs leave: a killed run's temp files are removed by the next run into the same folder (a live run's
are left alone), and every file written gets the mode the umask gives (temp files are made private, then renamed)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.cli_runner import run_cli
from tests.hostile.corpus import CLIP_TEMP_NAMES, STALE_PARTS
from tests.media import write_video

UMASK, MODE = 0o027, 0o640  # an unusual umask, and the mode it gives a new file


def _under_umask(call):
    """``call()`` with the process umask at :data:`UMASK`."""
    old = os.umask(UMASK)
    try:
        return call()
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", ["score", "extract", "train"])
def test_stale_temp_files_of_dead_runs_are_removed_and_modes_follow_umask(command, trained_model, trained_inputs,
                                                                          tiny_checkpoint, tmp_path):
    bench, feats = trained_inputs
    video = write_video(tmp_path / "a.mp4", num_frames=16)
    out = tmp_path / "out"
    args = {"score": ["score", str(video), "--model", str(trained_model), "--device", "cpu"],
            "extract": ["extract", str(video), "--backbone", "vadgraph-tiny-ViT", "--pretrained", str(tiny_checkpoint),
                        "--device", "cpu", "--snippet-len", "8"],
            "train": ["train", "--features", str(feats), "--benchmark", str(bench), "--epochs", "1", "--hidden", "16",
                      "--device", "cpu"]}[command]
    folder = out / "videos" if command == "extract" else out  # where that command writes per-video files
    folder.mkdir(parents=True)
    parts = {folder / name.format(pid=os.getppid()): removed for name, removed in STALE_PARTS.values()}
    for p in parts:
        p.write_text("half")
    run = _under_umask(lambda: run_cli(*args, "--out", str(out)))
    assert run.code == 0, run.err
    assert [p.exists() for p in parts] == [not removed for removed in parts.values()], sorted(os.listdir(folder))
    written = {name: mode for name, mode in _modes(out).items() if not Path(name).name.startswith(".")}  # planted
    expected = {"score": {"a.scores.csv", "a.segments.json", "a.png", "summary.csv"},
                "extract": {"manifest.json", "text.npz", "videos/a.npz"},
                "train": {"config.json", "model.safetensors"}}[command]
    assert set(written) == expected and set(written.values()) == {MODE}, written


def test_synth_videos_and_evidence_clips_follow_umask(tmp_path):
    from vad.engine.evidence import ClipRecorder, FrameRing

    run = _under_umask(lambda: run_cli("synth", str(tmp_path / "bench"), "--videos", "6", "--min-frames", "16",
                                       "--max-frames", "20"))
    assert run.code == 0, run.err
    assert set(_modes(tmp_path / "bench").values()) == {MODE}

    def record() -> list[dict]:
        ring, events = FrameRing(2.0, short_side=None), []
        for i in range(10):
            ring.push(i, np.full((48, 64, 3), 20 * i, np.uint8), 10.0)
        recorder = ClipRecorder(ring, events.append)
        recorder.begin(1, tmp_path / "clips" / "alert1.mp4", 0)
        recorder.finish(1, 10)
        recorder.close()
        return events

    (tmp_path / "clips").mkdir()
    events = _under_umask(record)
    assert [e["path"] for e in events] == [str(tmp_path / "clips" / "alert1.mp4")], events
    assert _modes(tmp_path / "clips") == {"alert1.mp4": MODE}


def test_a_live_session_removes_only_its_own_dead_clips(tmp_path):
    """The clip folder may be the user's current directory: only ``.alert-*`` clip temp files of dead sessions go."""
    from vad.engine.evidence import CLIP_PART_SUFFIX
    from vad.io import clean_stale_parts

    names = {name.format(pid=os.getppid()): gone for name, gone in CLIP_TEMP_NAMES.items()}
    for name in names:
        (tmp_path / name).write_text("x")
    removed = clean_stale_parts(tmp_path, f".alert-*{CLIP_PART_SUFFIX}", require_pid=True)
    assert sorted(p.name for p in removed) == sorted(n for n, gone in names.items() if gone)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, gone in names.items() if not gone)
