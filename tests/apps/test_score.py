"""`vad score`: outputs per good video, bad ones reported, exit 1; resume writes nothing; no partial files."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from apps.cli import main
from tests.media import write_video

ROOT = Path(__file__).resolve().parents[2]


def _summary(out: Path) -> dict[str, dict]:
    with (out / "summary.csv").open(newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


def _snapshot(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


@pytest.fixture
def mixed_dir(tmp_path, bad_videos) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    write_video(d / "good_a.mp4", num_frames=40, seed=1)
    write_video(d / "good_b.mp4", num_frames=56, seed=2)
    os.link(bad_videos["text"], d / "notes.mp4")
    os.link(bad_videos["truncated"], d / "truncated.mp4")
    return d


def test_score_good_and_bad_then_resume(mixed_dir, tmp_path, trained_model, capsys):
    out = tmp_path / "out"
    args = ["-q", "score", str(mixed_dir), "--model", str(trained_model), "--out", str(out), "--device", "cpu",
            "--threshold", "0.3"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "notes.mp4" in err and "truncated.mp4" in err and "/good_a.mp4" not in err

    summary = _summary(out)
    assert summary["good_a"]["status"] == "ok" and summary["good_b"]["status"] == "ok"
    assert summary["notes"]["status"] == "failed" and "notes.mp4" in summary["notes"]["error"]
    for name, frames in (("good_a", 40), ("good_b", 56)):
        rows = list(csv.DictReader((out / f"{name}.scores.csv").open()))
        assert len(rows) == frames and list(rows[0]) == ["frame", "time_s", "score"]
        scores = np.array([float(r["score"]) for r in rows])
        assert ((scores >= 0) & (scores <= 1)).all()
        assert float(summary[name]["max_score"]) == pytest.approx(scores.max(), abs=1e-4)
        doc = json.loads((out / f"{name}.segments.json").read_text())
        assert doc["threshold"] == 0.3 and doc["num_frames"] == frames
        assert len(doc["segments"]) == int(summary[name]["num_segments"])
        for seg in doc["segments"]:
            assert 0 <= seg["start_frame"] < seg["end_frame"] <= frames
            assert {"start_s", "end_s", "peak_score", "mean_score", "prompt", "prompt_similarity"} <= set(seg)
            assert -1.0 <= seg["prompt_similarity"] <= 1.0  # the trained model has prompts
        fusion = doc["fusion"]  # LEGO's learned weights relative to uniform, and the pair relied on most
        assert fusion["strongest_pair"] in fusion["relative_to_uniform"]
        assert any(abs(v) > 0 for m in fusion["relative_to_uniform"].values() for row in m for v in row)
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "notes.scores.csv").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind

    before = _snapshot(out)
    time.sleep(0.02)
    assert main(args) == 1  # the bad files are retried and still bad
    out_text = capsys.readouterr().out
    assert "0 scored, 2 already done, 2 failed" in out_text
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k != "summary.csv"} == \
        {k: v for k, v in before.items() if k != "summary.csv"}

    # another threshold means new segments: the videos are scored again
    assert main(args[:-1] + ["0.9"]) == 1
    assert "2 scored" in capsys.readouterr().out
    assert _summary(out)["good_a"]["threshold"] == "0.9"


def test_writer_failure_mid_file_leaves_no_partial_file(tmp_path, trained_model, monkeypatch, capsys):
    """A crash while the plot is being written leaves the earlier outputs whole and no half-written PNG."""
    import vad.engine.report  # noqa: F401  (matplotlib loaded before patching)

    video = write_video(tmp_path / "clip.mp4", num_frames=40)
    out = tmp_path / "out"

    def explode(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")  # partly written...
        raise KeyboardInterrupt  # ...then the user presses Ctrl-C

    from matplotlib.figure import Figure
    monkeypatch.setattr(Figure, "savefig", explode)
    code = main(["-q", "score", str(video), "--model", str(trained_model), "--out", str(out), "--device", "cpu"])
    assert code == 130
    names = sorted(p.name for p in out.iterdir())
    assert "clip.png" not in names and not [n for n in names if n.startswith(".")]
    assert "summary.csv" not in names  # the video never finished, so nothing claims it is done
    monkeypatch.undo()
    assert main(["-q", "score", str(video), "--model", str(trained_model), "--out", str(out), "--device",
                 "cpu"]) == 0
    assert (out / "clip.png").exists() and _summary(out)["clip"]["status"] == "ok"



def test_killed_run_leaves_no_partial_files_and_resumes(tmp_path, trained_model, capsys):
    """SIGKILL a real `vad score` subprocess mid-run: only whole files remain, and a rerun finishes the job."""
    d = tmp_path / "in"
    d.mkdir()
    for i in range(6):
        write_video(d / f"v{i}.mp4", num_frames=48, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "apps.cli", "-q", "score", str(d), "--model", str(trained_model), "--out",
           str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out / "summary.csv").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")] if out.exists() else []
    # a kill between mkstemp and rename can leave a hidden temp file, never a half-written output name
    for p in out.iterdir():
        if p.suffix == ".png" and not p.name.startswith("."):
            assert p.read_bytes()[:4] == b"\x89PNG"
        if p.name.endswith(".segments.json"):
            json.loads(p.read_text())
    done = {n for n, r in _summary(out).items() if r["status"] == "ok"} if (out / "summary.csv").exists() else set()
    for name in done:
        assert all((out / f"{name}{s}").exists() for s in (".scores.csv", ".segments.json", ".png"))
    assert main(cmd[3:]) == 0  # the same command, in-process this time
    assert f"{len(done)} already done" in capsys.readouterr().out
    assert all(r["status"] == "ok" for r in _summary(out).values()) and len(_summary(out)) == 6
    del leftovers


def test_model_weights_missing_is_a_clear_error(tmp_path, trained_model, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["backbone"]["weights"] = "/nowhere/clip.safetensors"
    (model / "config.json").write_text(json.dumps(cfg))
    video = write_video(tmp_path / "clip.mp4")
    assert main(["-q", "score", str(video), "--model", str(model), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--pretrained" in err and "/nowhere/clip.safetensors" in err and "Traceback" not in err


def test_not_a_model_dir_exit_2(tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4")
    assert main(["-q", "score", str(video), "--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_score_uses_the_stored_threshold_and_says_so(tmp_path, trained_model, capsys, caplog):
    """No --threshold: the calibrated one from config.json; a checkpoint without one: 0.5 and a one-line notice."""
    import shutil

    video = write_video(tmp_path / "v.mp4", num_frames=40, seed=4)
    stored = json.loads((trained_model / "config.json").read_text())["thresholds"]["far"]["value"]
    assert main(["-q", "score", str(video), "--model", str(trained_model), "--out", str(tmp_path / "a"),
                 "--device", "cpu"]) == 0
    assert f"threshold {stored:.4g} (calibrated: 1% false alarms" in capsys.readouterr().out
    doc = json.loads((tmp_path / "a" / "v.segments.json").read_text())
    assert doc["threshold"] == stored and doc["threshold_source"].startswith(f"{stored:.4g} (calibrated")

    old = tmp_path / "old"
    shutil.copytree(trained_model, old)
    info = json.loads((old / "config.json").read_text())
    del info["thresholds"]
    (old / "config.json").write_text(json.dumps(info))
    with caplog.at_level("WARNING"):
        assert main(["-q", "score", str(video), "--model", str(old), "--out", str(tmp_path / "b"),
                     "--device", "cpu"]) == 0
    assert "threshold 0.5 (default" in capsys.readouterr().out
    assert json.loads((tmp_path / "b" / "v.segments.json").read_text())["threshold"] == 0.5
    notices = [r.getMessage() for r in caplog.records if "no calibrated threshold" in r.getMessage()]
    assert len(notices) == 1 and "set --threshold to choose one" in notices[0]  # the library's field as the flag


def test_zero_shot_score_needs_no_model(tmp_path, tiny_checkpoint, capsys):
    """Plumbing only: the tiny random backbone makes meaningless prompt similarities (real CLIP weights needed)."""
    from vad.features.backbone import TINY_MODEL

    video = write_video(tmp_path / "v.mp4", num_frames=40, seed=6)
    (tmp_path / "prompts.txt").write_text("people walking\nfire\nfight\n")
    assert main(["-q", "score", str(video), "--out", str(tmp_path / "o")]) == 2
    assert "--zero-shot" in capsys.readouterr().err
    assert main(["-q", "score", str(video), "--zero-shot", "--prompts", str(tmp_path / "prompts.txt"),
                 "--backbone", TINY_MODEL, "--pretrained", str(tiny_checkpoint), "--device", "cpu",
                 "--out", str(tmp_path / "o")]) == 0
    assert "threshold 0.5 (zero-shot" in capsys.readouterr().out
    doc = json.loads((tmp_path / "o" / "v.segments.json").read_text())
    assert doc["model"] == "zero-shot" and all(s["prompt"] in ("fire", "fight") for s in doc["segments"])
