"""Hostile videos through `vad extract` and `vad score`: one batch over the whole corpus per command; each input
gets a correct result or a one-line failure naming it, the batch goes on, nothing half-written stays behind."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.cli_runner import no_partial_files, run_cli
from tests.hostile.corpus import NAMED_PATHS, RESUME_CHANGES, VIDEO_CASE_IDS
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
    # nothing stray: the summary, and the three outputs of each input scored
    ok = {c.path.stem for c in cases.values() if c.expect == "ok"}
    assert {p.name for p in out.iterdir()} == {"summary.csv"} | {f"{stem}{ext}" for stem in ok
                                                                 for ext in (".scores.csv", ".segments.json", ".png")}


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
        if case_id == "joined-ts":  # 2 s + 2 s at 10 fps, in file order: not 40 frames squeezed into 2 s
            assert doc["num_frames"] == 40 and doc["duration_s"] == pytest.approx(4.0, abs=0.05)
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
    # nothing stray: the run's two files, and one feature file per input extracted
    assert {p.name for p in out.iterdir()} == {"manifest.json", "text.npz", "videos"}
    assert {p.name for p in (out / "videos").iterdir()} == {f"{c.path.stem}.npz" for c in cases.values()
                                                            if c.expect == "ok"}


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


@pytest.mark.parametrize("command", ["score", "extract"])
def test_paths_named_on_the_command_line_are_each_reported(command, video_corpus, trained_model, tiny_checkpoint,
                                                           tmp_path):
    folder, _ = video_corpus
    good = write_video(tmp_path / "good.mp4", num_frames=16)
    named = {case: make(folder, tmp_path) for case, make in NAMED_PATHS.items()}
    out = tmp_path / "out"
    options = (["--model", str(trained_model)] if command == "score" else
               ["--backbone", "vadgraph-tiny-ViT", "--pretrained", str(tiny_checkpoint), "--snippet-len", "8"])
    run = run_cli(command, str(good), *map(str, named.values()), "--out", str(out), "--device", "cpu", *options)
    run.assert_clean()
    assert run.code == 1
    failed = [ln for ln in run.lines() if ln.startswith("vad: failed:")]
    assert len(failed) == len(named), failed
    for case, path in named.items():
        assert len(_failures(run, path)) == 1, (case, failed)
    assert (out / ("good.scores.csv" if command == "score" else "videos/good.npz")).is_file()


@pytest.mark.parametrize("change", list(RESUME_CHANGES))
def test_resume_keys_on_video_model_and_settings(change, trained_model, tmp_path):
    """A second `vad score` into the same folder keeps the outputs still valid; where the video, the model or the
    settings changed, it scores again and says which."""
    from safetensors.torch import load_file, save_file

    videos = tmp_path / "in"
    videos.mkdir()
    write_video(videos / "a.mp4", num_frames=16, seed=1)
    write_video(videos / "b.mp4", num_frames=16, seed=2)
    args = ["score", str(videos), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert run_cli(*args, "--model", str(trained_model)).code == 0
    model, extra = trained_model, []
    if change == "model":  # the same architecture, other weights
        model = tmp_path / "other_model"
        shutil.copytree(trained_model, model)
        tensors = load_file(str(model / "model.safetensors"))
        key = next(k for k, v in tensors.items() if v.is_floating_point() and k.endswith("weight"))
        tensors[key] = tensors[key] + 0.5
        save_file(tensors, str(model / "model.safetensors"))
    elif change == "settings":
        extra = ["--threshold", "0.7"]
    elif change == "content":  # same name, other frames
        write_video(videos / "a.mp4", num_frames=16, seed=9)
    run = run_cli(*args, "--model", str(model), *extra)
    run.assert_clean()
    assert run.code == 0
    notes = [ln for ln in run.lines() if ln.startswith("vad: note:")]
    if RESUME_CHANGES[change] is None:
        assert "0 scored, 2 already done" in run.out and not run.lines()
    elif change == "content":
        assert "1 scored, 1 already done" in run.out
        assert notes == [f"vad: note: a: scoring again: its outputs were made with {RESUME_CHANGES[change]}"]
    else:
        assert "2 scored, 0 already done" in run.out and len(notes) == 2
        assert all(f"scoring again: its outputs were made with {RESUME_CHANGES[change]}" in n for n in notes), notes
    if change == "settings":
        assert all("threshold=0.7" in n for n in notes), notes
