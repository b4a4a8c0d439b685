"""Hostile videos through `vad extract` and `vad score`: one batch over the whole corpus per command; each input
gets a correct result or a one-line failure naming it, the batch goes on, nothing half-written stays behind."""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.cli_runner import no_partial_files, run_cli
from tests.hostile.corpus import VIDEO_CASE_IDS
from tests.media import write_video
from vad.io import one_line, printable

CASE_IDS = VIDEO_CASE_IDS


def _failures(run, path: Path) -> list[str]:
    """The failure lines about ``path`` (each starts with the path, as one line)."""
    return [ln for ln in run.lines() if ln.startswith(f"vad: failed: {one_line(str(path))}")]


@pytest.fixture(scope="module")
def score_run(video_corpus, trained_model, tmp_path_factory):
    """`vad score` over the whole corpus folder, once."""
    folder, cases = video_corpus
    out = tmp_path_factory.mktemp("score") / "out"
    run = run_cli("score", str(folder), "--model", str(trained_model), "--out", str(out), "--device", "cpu",
                  "--threshold", "0.3")
    with (out / "summary.csv").open(newline="", encoding="utf-8") as fh:
        summary = {row["name"]: row for row in csv.DictReader(fh)}
    return run, out, summary, {c.id: c for c in cases}


@pytest.fixture(scope="module")
def extract_run(video_corpus, tiny_checkpoint, tmp_path_factory):
    """`vad extract` over the whole corpus folder, once."""
    folder, cases = video_corpus
    out = tmp_path_factory.mktemp("extract") / "feats"
    run = run_cli("extract", str(folder), "--out", str(out), "--backbone", "vadgraph-tiny-ViT", "--pretrained",
                  str(tiny_checkpoint), "--device", "cpu", "--snippet-len", "8")
    return run, out, json.loads((out / "manifest.json").read_text()), {c.id: c for c in cases}


def test_score_batch_is_clean(score_run):
    run, out, summary, cases = score_run
    run.assert_clean()
    assert run.code == 1  # some inputs failed, the run finished
    assert not no_partial_files(out)
    # every input has a row (two files of one stem share one), and loop_b.mp4 too (the loop's other half)
    assert len(summary) == len(cases)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_score_each_input(score_run, case_id):
    run, out, summary, cases = score_run
    case = cases[case_id]
    name = printable(case.path.stem)
    row = summary[name]
    failures = _failures(run, case.path)
    if case_id == "clash-second":
        assert "clash.avi" in failures[0]  # names both files
    if case.expect == "ok":
        assert row["status"] == "ok", (case.why, row["error"])
        assert not failures
        rows = list(csv.DictReader((out / f"{case.path.stem}.scores.csv").open(encoding="utf-8")))
        doc = json.loads((out / f"{case.path.stem}.segments.json").read_text(encoding="utf-8"),
                         parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
        assert len(rows) == doc["num_frames"] > 0 and (out / f"{case.path.stem}.png").stat().st_size > 0
        scores = np.array([float(r["score"]) for r in rows])
        assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
        times = np.array([float(r["time_s"]) for r in rows])
        assert (np.diff(times) > 0).all() and times[0] == 0.0
        if case_id == "vfr":  # 60 frames at 30 fps, then 7.5 fps: frame 60 starts at 2 s, not 60 / avg fps
            assert times[60] == pytest.approx(2.0, abs=0.01) and times[61] == pytest.approx(2.133, abs=0.01)
            assert doc["variable_frame_rate"] and doc["duration_s"] == pytest.approx(10.0, abs=0.2)
    elif case_id == "clash-second":  # its stem's outputs belong to clash.avi; its row too
        assert len(failures) == 1 and row["path"].endswith("clash.avi")
    else:
        assert row["status"] == "failed" and row["error"], case.why
        assert len(failures) == 1, (case.why, run.lines())
        assert not (out / f"{case.path.stem}.scores.csv").exists()


def test_extract_batch_is_clean(extract_run):
    from vad.features.store import TextFeatures, load_feature_dir

    run, out, manifest, cases = extract_run
    run.assert_clean()
    assert run.code == 1 and not no_partial_files(out)
    feats, text = load_feature_dir(out)
    ok = {printable(c.path.stem) for c in cases.values() if c.expect == "ok"}
    assert {printable(n) for n in feats} == ok
    # videos called text.mp4 and manifest.mp4 did not overwrite the run's own files
    assert TextFeatures.load(out / "text.npz").prompts == text.prompts and len(text.prompts) == 14
    assert isinstance(manifest["videos"], dict) and feats["text"].num_snippets >= 1
    assert (out / "videos" / "text.npz").is_file() and (out / "videos" / "manifest.npz").is_file()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_extract_each_input(extract_run, case_id):
    run, out, manifest, cases = extract_run
    case = cases[case_id]
    entry = manifest["videos"][case.path.stem]
    failures = _failures(run, case.path)
    if case_id == "clash-second":
        assert len(failures) == 1 and "clash.avi" in failures[0] and entry["path"].endswith("clash.avi")
    elif case.expect == "ok":
        assert entry["status"] == "ok", (case.why, entry.get("error"))
        assert not failures
        if case_id == "vfr":
            assert entry["vfr"]
    else:
        assert entry["status"] == "failed" and len(failures) == 1, (case.why, run.lines())


def test_paths_named_on_the_command_line_are_each_reported(video_corpus, trained_model, tmp_path):
    folder, _ = video_corpus
    good = write_video(tmp_path / "good.mp4", num_frames=16)
    empty_dir = tmp_path / "nothing_here"
    empty_dir.mkdir()
    named = [folder / "dangling.mp4", folder / "loop_a.mp4", folder / "folder.mp4", tmp_path / "absent.mp4",
             empty_dir]
    run = run_cli("score", str(good), *map(str, named), str(tmp_path / "no_match_*.mp4"), "--model",
                  str(trained_model), "--out", str(tmp_path / "out"), "--device", "cpu")
    run.assert_clean()
    assert run.code == 1
    failed = [ln for ln in run.lines() if ln.startswith("vad: failed:")]
    for path in named + [tmp_path / "no_match_*.mp4"]:
        assert len(_failures(run, path)) == 1, (path, failed)
    assert (tmp_path / "out" / "good.scores.csv").is_file()


def test_resume_keys_on_video_model_and_settings(trained_model, tmp_path):
    from safetensors.torch import load_file, save_file

    videos = tmp_path / "in"
    videos.mkdir()
    write_video(videos / "a.mp4", num_frames=16, seed=1)
    write_video(videos / "b.mp4", num_frames=16, seed=2)
    out = tmp_path / "out"
    args = ["score", str(videos), "--out", str(out), "--device", "cpu"]
    assert run_cli(*args, "--model", str(trained_model)).code == 0
    again = run_cli(*args, "--model", str(trained_model))
    assert again.code == 0 and "2 already done" in again.out and not again.lines()

    other = tmp_path / "other_model"
    shutil.copytree(trained_model, other)
    tensors = load_file(str(other / "model.safetensors"))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and k.endswith("weight"))
    tensors[key] = tensors[key] + 0.5
    save_file(tensors, str(other / "model.safetensors"))
    run = run_cli(*args, "--model", str(other))
    assert run.code == 0 and "2 scored" in run.out
    assert sum("scoring again" in ln and "different model" in ln for ln in run.lines()) == 2
    run.assert_clean()

    run = run_cli(*args, "--model", str(other), "--threshold", "0.7")
    assert "different settings" in run.err and "threshold=0.7" in run.err

    write_video(videos / "a.mp4", num_frames=16, seed=9)  # same name, other content
    run = run_cli(*args, "--model", str(other), "--threshold", "0.7")
    assert "1 scored" in run.out and "a: scoring again: its outputs were made with different video content" in run.err


def test_stale_temp_files_of_dead_runs_are_removed_and_modes_follow_umask(trained_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".a.scores.csv.999999999.xyz.csv.part"
    legacy = out / ".a.png.abc123.png.part"
    live = out / f".a.png.{os.getppid()}.abc.png.part"
    for p in (dead, legacy, live):
        p.write_text("half")
    write_video(tmp_path / "a.mp4", num_frames=16)
    old = os.umask(0o027)
    try:
        run = run_cli("score", str(tmp_path / "a.mp4"), "--model", str(trained_model), "--out", str(out),
                      "--device", "cpu")
    finally:
        os.umask(old)
    assert run.code == 0
    assert not dead.exists() and not legacy.exists() and live.exists()
    for name in ("a.scores.csv", "a.segments.json", "a.png", "summary.csv"):
        assert (out / name).stat().st_mode & 0o777 == 0o640, name
