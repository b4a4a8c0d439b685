"""``--engine ray``: a local Ray runtime (2 CPU workers) gives the local path's outputs and report, survives a
worker that dies mid-run, and without Ray installed the CLI says how to get it."""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from apps.cli import main
from tests.media import write_video
from vad.features.store import TextFeatures, VideoFeatures, load_manifest

ROOT = Path(__file__).resolve().parents[3]
SKIP_REASON = "Ray is an optional extra (pip install 'vadgraph[ray]'); `make test` installs it with .[dev]"


def _backbone_args(ckpt: Path) -> list[str]:
    return ["--backbone", "vadgraph-tiny-ViT", "--pretrained", str(ckpt), "--device", "cpu", "--snippet-len", "8"]


@pytest.fixture(scope="module")
def ray_runtime():
    """A Ray runtime on this machine with 2 CPUs; its workers import this checkout (and the test helpers)."""
    ray = pytest.importorskip("ray", reason=SKIP_REASON)
    pytest.importorskip("ray.data", reason=SKIP_REASON)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture
def videos(tmp_path, bad_videos) -> Path:
    """Four small videos and one text file named like a video."""
    d = tmp_path / "in"
    d.mkdir()
    for i, name in enumerate(("a", "b", "c", "victim")):
        write_video(d / f"{name}.mp4", num_frames=24 + 8 * i, size=(64, 48), seed=i)
    os.link(bad_videos["text"], d / "notes.mp4")
    return d


def _assert_same_features(local: Path, remote: Path) -> None:
    names = sorted(p.name for p in (local / "videos").glob("*.npz"))
    assert names == sorted(p.name for p in (remote / "videos").glob("*.npz")) and len(names) == 4
    for name in names:
        a, b = VideoFeatures.load(local / "videos" / name), VideoFeatures.load(remote / "videos" / name)
        for level in ("clip", "frame", "patch", "motion", "frame_indices"):
            np.testing.assert_array_equal(getattr(a, level), getattr(b, level), err_msg=f"{name} {level}")
    np.testing.assert_array_equal(TextFeatures.load(local / "text.npz").embeddings,
                                  TextFeatures.load(remote / "text.npz").embeddings)
    ma, mb = load_manifest(local), load_manifest(remote)
    drop = {"seconds"}  # wall time
    assert {k: {f: v for f, v in e.items() if f not in drop} for k, e in ma["videos"].items()} == \
        {k: {f: v for f, v in e.items() if f not in drop} for k, e in mb["videos"].items()}
    assert {k: v for k, v in ma.items() if k != "videos"} == {k: v for k, v in mb.items() if k != "videos"}


@pytest.mark.slow
def test_extract_on_ray_matches_local_despite_a_broken_file_and_a_dying_worker(ray_runtime, videos, tmp_path,
                                                                                tiny_checkpoint, monkeypatch, capsys):
    """2 workers, one of which dies on "victim" (its process exits): Ray replaces it, and the run ends with the
    local path's features, manifest and report: every video once, the broken one named, exit 1."""
    import vad.engine.ray_engine
    from tests.vad.engine.ray_helpers import MARKER, DiesOnceWorker

    args = _backbone_args(tiny_checkpoint)
    assert main(["-q", "extract", str(videos), "--out", str(tmp_path / "local"), *args]) == 1
    local_err = capsys.readouterr().err
    monkeypatch.setattr(vad.engine.ray_engine, "ExtractWorker", DiesOnceWorker)
    code = main(["-q", "extract", str(videos), "--out", str(tmp_path / "ray"), *args, "--engine", "ray",
                 "--workers", "2"])
    out, err = capsys.readouterr()
    assert (tmp_path / "ray" / MARKER).exists(), "a worker was meant to die"
    assert code == 1
    assert "extract: 4 written, 0 already done, 1 failed" in out  # "victim" counted once
    failed = [line for line in err.splitlines() if line.startswith("vad: failed:")]
    assert failed == [line for line in local_err.splitlines() if line.startswith("vad: failed:")]
    assert len(failed) == 1 and "notes.mp4" in failed[0]
    _assert_same_features(tmp_path / "local", tmp_path / "ray")
    assert load_manifest(tmp_path / "ray")["videos"]["notes"]["status"] == "failed"
    assert not list((tmp_path / "ray").rglob(".*.part"))
    (videos / "notes.mp4").unlink()  # a rerun finds everything done and starts no worker
    code = main(["-q", "extract", str(videos), "--out", str(tmp_path / "ray"), *args, "--engine", "ray"])
    assert code == 0 and "extract: 0 written, 4 already done, 0 failed" in capsys.readouterr().out


def test_score_on_ray_matches_local(ray_runtime, tmp_path, trained_model, capsys):
    d = tmp_path / "in"
    d.mkdir()
    write_video(d / "one.mp4", num_frames=40, size=(64, 48), seed=5)
    write_video(d / "two.mp4", num_frames=56, size=(64, 48), seed=6)
    for engine, out in ((["--engine", "local"], "local"), (["--engine", "ray", "--workers", "1"], "ray")):
        assert main(["-q", "score", str(d), "--model", str(trained_model), "--out", str(tmp_path / out),
                     *engine]) == 0
    assert "score: 2 scored, 0 already done, 0 failed" in capsys.readouterr().out
    for name in ("one", "two"):
        assert (tmp_path / "local" / f"{name}.scores.csv").read_text() == \
            (tmp_path / "ray" / f"{name}.scores.csv").read_text()
    rows = [list(csv.DictReader((tmp_path / out / "summary.csv").open())) for out in ("local", "ray")]
    assert [{k: v for k, v in r.items() if k != "path"} for r in rows[0]] == \
        [{k: v for k, v in r.items() if k != "path"} for r in rows[1]]


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    video = write_video(tmp_path / "ok.mp4", size=(64, 48))
    code = main(["-q", "extract", str(video), "--out", str(tmp_path / "f"), *_backbone_args(tiny_checkpoint),
                 "--engine", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "pip install 'vadgraph[ray]'" in err and not (tmp_path / "f").exists()


def test_an_unknown_engine_is_a_usage_error(tmp_path, capsys):
    assert main(["extract", str(tmp_path), "--out", str(tmp_path / "f"), "--engine", "spark"]) == 2
    assert "engine must be one of local, ray" in capsys.readouterr().err
