"""Hostile features, labels, annotations and model directories through `vad train`, `vad eval` and `vad score`:
exit 0 with a correct result, exit 1 naming each left-out video, or exit 2 with one line naming the file and field."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.cli_runner import no_partial_files, run_cli
from tests.hostile.corpus import (
    ANNOTATIONS,
    FEATURE_DAMAGE,
    LABELS,
    MODEL_DAMAGE,
    PEER_BAD_MEMBERS,
    PEER_FORMATS,
    PEER_NAMES,
    PEER_UNUSABLE,
    damage_feature_dir,
    damage_model_dir,
    write_peer_corpus,
)
from tests.media import write_video

FAST = ["--epochs", "1", "--num-snippets", "8", "--train.batch-size", "4", "--device", "cpu", "--hidden", "16"]


def _one_error(run, *needles: str) -> str:
    """The single `vad: error:` line, which must name each of ``needles``."""
    run.assert_clean()
    errors = [ln for ln in run.lines() if ln.startswith("vad: error:")]
    assert len(errors) == 1 and len(run.lines()) == 1, run.lines()
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def peer(tmp_path_factory) -> dict[str, Path]:
    return write_peer_corpus(tmp_path_factory.mktemp("peer"))


@pytest.mark.parametrize("how", sorted(FEATURE_DAMAGE))
def test_damaged_feature_dirs(how, trained_inputs, trained_model, tmp_path):
    bench, feats = trained_inputs
    code, _ = FEATURE_DAMAGE[how]
    damaged = damage_feature_dir(feats, tmp_path / "feats", how)
    train = run_cli("train", "--features", str(damaged), "--benchmark", str(bench), "--out", str(tmp_path / "m"),
                    *FAST)
    ev = run_cli("eval", "--model", str(trained_model), "--features", str(damaged), "--benchmark", str(bench),
                 "--split", "all", "--out", str(tmp_path / "eval.json"))
    for run in (train, ev):
        assert run.code == code, (how, run.err)
        run.assert_clean()
    if code == 2:
        _one_error(train)
        assert not (tmp_path / "m").exists()
    else:
        assert (tmp_path / "m" / "model.safetensors").is_file() and not no_partial_files(tmp_path)
        metrics = json.loads((tmp_path / "eval.json").read_text(), parse_constant=lambda c: pytest.fail(c))
        assert isinstance(metrics, dict)
    if code == 1:  # the bad video is named on one line, once per command
        for run in (train, ev):
            failed = [ln for ln in run.lines() if ln.startswith("vad: failed:")]
            assert len(failed) == 1, run.lines()
    if how.startswith(("text", "manifest")):
        assert ("text.npz" if how.startswith("text") else "manifest.json") in train.err


@pytest.mark.parametrize("fmt", PEER_FORMATS)
def test_peer_formats_train_eval_score_with_defaults(fmt, peer, tmp_path):
    """The default model (all levels, prompts) on clip-only features without prompt embeddings."""
    features = peer[fmt]
    model = tmp_path / "model"
    train = run_cli("train", "--features", str(features), "--out", str(model), "--epochs", "1", "--device", "cpu",
                    "--val-fraction", "0.3")
    assert train.code == 0, train.err
    config = json.loads((model / "config.json").read_text())
    assert config["levels"] == ["clip"] and config["model"]["num_prompts"] == 0 and config["prompts"] == []
    gt = np.concatenate([np.r_[np.zeros(96), np.ones(96)] if n.startswith("Abuse") else np.zeros(192)
                         for n in PEER_NAMES])  # 12 snippets of 16 frames each
    np.save(tmp_path / "gt.npy", gt)
    (tmp_path / "gt.list").write_text("\n".join(PEER_NAMES) + "\n")
    ev = run_cli("eval", "--model", str(model), "--features", str(features), "--gt", str(tmp_path / "gt.npy"),
                 "--gt-list", str(tmp_path / "gt.list"), "--out", str(tmp_path / "eval.json"))
    assert ev.code == 0, ev.err
    assert 0.0 <= json.loads((tmp_path / "eval.json").read_text())["auc"] <= 1.0
    video = write_video(tmp_path / "v.mp4", num_frames=16)
    score = run_cli("score", str(video), "--model", str(model), "--out", str(tmp_path / "out"), "--device", "cpu")
    assert score.code == 2
    _one_error(score, "cannot score raw videos")
    for run in (train, ev):
        run.assert_clean()


def test_peer_lists_with_bad_members_train_on_the_rest(peer, tmp_path):
    run = run_cli("train", "--features", str(peer["rtfm-bad-members"]), "--out", str(tmp_path / "m"), "--epochs",
                  "1", "--device", "cpu", "--val-fraction", "0.3", "--hidden", "16")
    run.assert_clean()
    assert run.code == 1 and (tmp_path / "m" / "config.json").is_file()
    failed = [ln for ln in run.lines() if ln.startswith("vad: failed:")]
    assert len(failed) == len(PEER_BAD_MEMBERS), failed
    for member, _, why in PEER_BAD_MEMBERS.values():
        line = next(ln for ln in failed if member.removesuffix("_i3d.npy") in ln)
        assert why in line, line


@pytest.mark.parametrize("case", list(PEER_UNUSABLE))
def test_unusable_peer_inputs(case, peer, tmp_path):
    run = run_cli("train", "--features", str(peer[case]), "--out", str(tmp_path / "m"), *FAST)
    assert run.code == 2
    _one_error(run, *PEER_UNUSABLE[case])
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("case", sorted(LABELS))
def test_labels_files(case, trained_inputs, tmp_path):
    bench, feats = trained_inputs
    with (bench / "labels.csv").open(encoding="utf-8") as fh:
        import csv

        rows = [(r["name"], int(r["label"]), r["split"]) for r in csv.DictReader(fh)]
    make, code = LABELS[case]
    labels = tmp_path / "labels.csv"
    labels.write_bytes(make(rows))
    run = run_cli("train", "--features", str(feats), "--labels", str(labels), "--out", str(tmp_path / "m"), *FAST)
    assert run.code == code, run.err
    if code == 2:
        line = _one_error(run, "labels.csv")
        if case not in ("header-only", "empty", "no-label-column"):  # the bad row is the last one
            assert f"labels.csv:{len(rows) + 2}:" in line, line
    else:
        run.assert_clean()
        assert not [ln for ln in run.lines() if not ln.startswith("vad: note:")]


@pytest.mark.parametrize("case", sorted(ANNOTATIONS))
def test_annotation_files(case, trained_inputs, trained_model, tmp_path):
    bench, feats = trained_inputs
    base = (bench / "Temporal_Anomaly_Annotation.txt").read_bytes()
    extra, code = ANNOTATIONS[case]
    ann = tmp_path / "ann.txt"
    ann.write_bytes(base + extra)
    run = run_cli("eval", "--model", str(trained_model), "--features", str(feats), "--labels",
                  str(bench / "labels.csv"), "--annotations", str(ann), "--out", str(tmp_path / "e.json"))
    assert run.code == code
    last_line = base.count(b"\n") + 1
    _one_error(run, f"ann.txt:{last_line}:")


@pytest.mark.parametrize("how", MODEL_DAMAGE)
def test_damaged_model_dirs(how, trained_inputs, trained_model, tmp_path):
    bench, feats = trained_inputs
    model = damage_model_dir(trained_model, tmp_path / "model", how)
    if how == "backbone-weights-gone":  # only scoring raw videos needs the backbone
        video = write_video(tmp_path / "v.mp4", num_frames=16)
        run = run_cli("score", str(video), "--model", str(model), "--out", str(tmp_path / "o"), "--device", "cpu")
        assert run.code == 2
        _one_error(run, "config.json field backbone.weights", "--pretrained")
        return
    where = "model.safetensors" if how.startswith(("text-", "weight-", "truncated-")) else "config.json"
    field = {"hidden-abc": "hidden", "heads-0": "heads", "unknown-level": "sound", "levels-string": "levels",
             "dropout-inf": "dropout", "more-prompts": "prompts", "text-missing": "num_prompts",
             "text-wrong-width": "feature_dim", "text-nan": "'__text_embeddings__' holds NaN",
             "weight-nan": "NaN", "config-non-utf8": "UTF-8"}.get(how, "")
    run = run_cli("eval", "--model", str(model), "--features", str(feats), "--benchmark", str(bench),
                  "--out", str(tmp_path / "eval.json"))
    assert run.code == 2, run.err
    _one_error(run, where, field)
    assert not (tmp_path / "eval.json").exists()
    if how == "weight-nan":  # scoring refuses it too (it once scored every frame NaN, exit 0, NaN in the JSON)
        assert "'__text_embeddings__'" not in run.err  # a model weight, not the prompt embeddings
        video = write_video(tmp_path / "v.mp4", num_frames=16)
        run = run_cli("score", str(video), "--model", str(model), "--out", str(tmp_path / "o"), "--device", "cpu")
        assert run.code == 2
        _one_error(run, where, field)
        assert not (tmp_path / "o" / "v.segments.json").exists()


def test_copied_model_dir_finds_its_backbone_weights(trained_model, tiny_checkpoint, tmp_path):
    config = json.loads((trained_model / "config.json").read_text())
    rel = config["backbone"]["weights"]
    assert rel.startswith(("./", "../")) and not Path(rel).is_absolute()
    moved = tmp_path / "a" / "b" / "c" / trained_model.name
    shutil.copytree(trained_model, moved)
    target = (moved / rel).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_checkpoint, target)
    info = json.loads((moved / "config.json").read_text())
    info["backbone"]["weights_abs"] = "/nonexistent/tiny.safetensors"  # only the relative path can work
    (moved / "config.json").write_text(json.dumps(info))
    video = write_video(tmp_path / "v.mp4", num_frames=16)
    run = run_cli("score", str(video), "--model", str(moved), "--out", str(tmp_path / "o"), "--device", "cpu")
    assert run.code == 0, run.err


def test_no_nan_in_json_when_validation_has_one_class(tmp_path):
    """A metric that cannot be computed is written as null, never NaN."""
    from vad.io import write_json_atomic

    write_json_atomic(tmp_path / "m.json", {"auc": float("nan"), "x": [np.float32("inf"), 1.0], "n": np.int64(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"auc": None, "x": [None, 1.0], "n": 3}
