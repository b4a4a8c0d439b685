"""Synthetic benchmark: layout, decodability, determinism, ground-truth consistency, splits."""
from __future__ import annotations

import csv
import hashlib
from dataclasses import replace

import decord
import numpy as np
import pytest

from vad.errors import SynthError
from vad.synth.benchmark import ANOMALY_CLASSES, SPLITS, SynthConfig, SynthVideo, plan_benchmark, read_labels
from vad.synth.generate import _Scene, make_benchmark

SMALL = SynthConfig(videos=12, seed=3, min_frames=32, max_frames=48)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("synth") / "a", SMALL, progress=False)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_and_labels(bench):
    root = bench.root
    for name in ("Temporal_Anomaly_Annotation.txt", "labels.csv", "train.list", "val.list", "test.list",
                 "gt-test.npy", "gt-val.npy", "benchmark.json"):
        assert (root / name).is_file(), name
    with open(root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["name", "file", "label", "class", "split", "num_frames", "fps"]
    assert len(rows) == SMALL.videos
    for row in rows:
        assert row["name"].startswith(row["class"] + "_")
        assert (root / row["file"]).is_file()
        assert int(row["label"]) == (row["class"] != "Normal")
    ann = (root / "Temporal_Anomaly_Annotation.txt").read_text().splitlines()
    assert len(ann) == SMALL.videos and all(len(line.split()) == 6 for line in ann)
    assert not list(root.glob("videos/.*")), "no temp files left behind"


def test_splits_have_both_labels_and_abnormal_first(bench):
    by_file = {v.file: v for v in bench.videos}
    for split in SPLITS:
        files = (bench.root / f"{split}.list").read_text().split()
        labels = [by_file[f].label for f in files]
        assert 0 in labels and 1 in labels, split
        assert labels == sorted(labels, reverse=True), f"{split}: abnormal videos must come first"
        assert all(by_file[f].split == split for f in files)


def test_decord_reads_exact_frame_counts(bench):
    for v in bench.videos:
        vr = decord.VideoReader(str(bench.root / v.file))
        assert len(vr) == v.num_frames, v.name
        frames = vr.get_batch([0, v.num_frames - 1]).asnumpy()
        assert frames.shape == (2, SMALL.height, SMALL.width, 3)


def test_ground_truth_consistent(bench):
    by_file = {v.file: v for v in bench.videos}
    for split in ("val", "test"):
        files = (bench.root / f"{split}.list").read_text().split()
        gt = np.load(bench.root / f"gt-{split}.npy", allow_pickle=False)
        assert gt.dtype == np.uint8
        parts = np.split(gt, np.cumsum([by_file[f].num_frames for f in files])[:-1])
        assert sum(p.size for p in parts) == gt.size
        for f, part in zip(files, parts):
            v = by_file[f]
            if v.label:
                assert part[v.start:v.end].all() and part.sum() == v.end - v.start
                frac = (v.end - v.start) / v.num_frames
                assert 0.05 - 1 / v.num_frames <= frac <= 0.30 + 1e-9, (v.name, frac)
            else:
                assert not part.any()
    assert read_labels(bench.root) == bench.videos


def test_deterministic_for_a_seed(bench, tmp_path):
    again = make_benchmark(tmp_path / "b", SMALL, progress=False)
    for name in ("labels.csv", "Temporal_Anomaly_Annotation.txt", "gt-test.npy", "gt-val.npy", "test.list"):
        assert _digest(bench.root / name) == _digest(again.root / name), name
    v = bench.videos[0]
    a = decord.VideoReader(str(bench.root / v.file)).get_batch(range(v.num_frames)).asnumpy()
    b = decord.VideoReader(str(again.root / v.file)).get_batch(range(v.num_frames)).asnumpy()
    assert np.array_equal(a, b)
    assert all(_digest(bench.root / x.file) == _digest(again.root / x.file) for x in bench.videos)
    other = plan_benchmark(replace(SMALL, seed=4))
    assert [(x.name, x.start) for x in other] != [(x.name, x.start) for x in bench.videos]


@pytest.mark.parametrize("n", [6, 7, 11, 30, 31, 64, 300])
def test_plan_splits(n):
    videos = plan_benchmark(SynthConfig(videos=n, seed=n))
    assert len(videos) == n and len({v.name for v in videos}) == n
    for split in SPLITS:
        labels = {v.label for v in videos if v.split == split}
        assert labels == {0, 1}, (n, split)
    if n >= 30:
        assert {v.cls for v in videos if v.split == "test"} >= set(ANOMALY_CLASSES)


def _scene(cls: str, seed: int = 0) -> tuple[_Scene, SynthVideo]:
    video = next(v for v in plan_benchmark(SynthConfig(videos=40, seed=seed)) if v.cls == cls)
    return _Scene(video, SynthConfig(videos=40, seed=seed), int(video.name.split("_")[1])), video


def test_running_and_wrongway_are_motion_anomalies():
    """The anomaly is in the motion, not in any single frame: speed and direction of one agent."""
    scene, v = _scene("Running")
    runner = scene.agents[-1]
    step = np.abs(np.diff(runner.x.astype(float)))
    step = step[step < scene.w / 2]  # ignore wrap-around jumps
    normal_steps = [np.median(np.abs(np.diff(a.x.astype(float)))) for a in scene.agents[:-1]]
    inside = np.abs(np.diff(runner.x[v.start:v.end].astype(float)))
    assert np.median(inside[inside < scene.w / 2]) > 2 * max(normal_steps) + 1
    scene, v = _scene("WrongWay")
    walker = scene.agents[-1].x.astype(float)
    d_in = np.diff(walker[v.start:v.end])
    d_in = d_in[np.abs(d_in) < scene.w / 2]
    assert (d_in <= 0).all() and (d_in < 0).any()
    for a in scene.agents[:-1]:
        d = np.diff(a.x.astype(float))
        assert (d[np.abs(d) < scene.w / 2] >= 0).all(), "normal agents walk left to right"


@pytest.mark.parametrize("bad", [{"videos": 5}, {"min_frames": 200}, {"difficulty": 1.5},
                                 {"classes": ("Running", "Dancing")}, {"val_fraction": 0.5, "test_fraction": 0.5}])
def test_bad_config(bad):
    with pytest.raises(SynthError):
        plan_benchmark(replace(SMALL, **bad))
