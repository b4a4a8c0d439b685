"""Calibrated thresholds: the math, the round trip through a checkpoint, old checkpoints, time to detect."""
import json
import logging
import math

import numpy as np
import pytest

from tests.vad.test_train import FAST, D, planted_dataset
from vad.engine.calibration import CalibrationConfig, f1_threshold, far_threshold, stored_threshold
from vad.engine.evaluate import GroundTruthSource, evaluate_model
from vad.engine.metrics import evaluate, time_to_detect
from vad.engine.train import TrainConfig, train_model
from vad.models.checkpoint import load_checkpoint
from vad.models.config import ModelConfig


def test_far_threshold_allows_the_target_share_of_normal_frames():
    scores = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    t, achieved = far_threshold(scores, 0.01)
    assert 0.989 < t < 0.990 and achieved == pytest.approx(0.01)
    t, achieved = far_threshold(np.repeat([0.1, 0.9], [990, 10]), 0.005)  # ties at 0.9: none may pass
    assert t > 0.9 and achieved == 0.0
    assert far_threshold(np.full(50, 1.0), 0.01)[0] == 1.0  # clipped to [0, 1]


def test_f1_threshold_by_hand():
    frames = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.4])
    labels = np.array([0, 0, 0, 1, 1, 0])
    t, f1 = f1_threshold(frames, labels)
    assert t == pytest.approx(0.8) and f1 == pytest.approx(1.0)


def test_time_to_detect_by_hand():
    labels = np.zeros(100, np.uint8)
    labels[30:60] = 1
    scores = np.zeros(100)
    scores[10] = 0.9  # a false alarm before the onset is no detection
    scores[45:50] = 0.7
    assert time_to_detect(scores, labels, fps=10.0, threshold=0.5) == pytest.approx(1.5)
    assert math.isnan(time_to_detect(scores, labels, fps=10.0, threshold=0.95))  # never: a miss
    assert math.isnan(time_to_detect(scores, np.zeros(100), fps=10.0, threshold=0.5))  # no event
    normal = np.zeros(100)
    normal[:5] = 0.6
    report = evaluate({"a": scores, "b": np.zeros(100), "n": normal},
                      {"a": labels, "b": labels, "n": np.zeros(100, np.uint8)},
                      {"a": "Fire", "b": "Fight"}, threshold=0.5, fps={"a": 10.0, "b": 10.0, "n": 10.0})
    assert report.time_to_detect_s["a"] == pytest.approx(1.5) and math.isnan(report.time_to_detect_s["b"])
    assert report.median_time_to_detect_s == pytest.approx(1.5) and report.missed == 1
    assert report.per_class_missed == {"Fight": 1, "Fire": 0}
    assert report.per_class_far["Normal"] == pytest.approx(0.05)  # 5 of the normal video's 100 frames
    assert report.per_class_far["Fire"] == pytest.approx(1 / 70)  # the alarm at frame 10, outside the event
    assert report.to_dict()["time_to_detect_s"]["b"] is None  # NaN -> JSON null
    assert "time to detect" in report.format_table()


def test_thresholds_round_trip_through_the_checkpoint(tmp_path):
    ds, gt = planted_dataset()
    val_gt = {r.name: gt[r.name] for r in ds.split("val")}
    short = TrainConfig(**{**FAST.__dict__, "epochs": 2})
    train_model(ds, ModelConfig(arch="mil_mlp", feature_dim=D), short, tmp_path / "m", val_gt, progress=False,
                calibration=CalibrationConfig(target_far=0.05))
    info = json.loads((tmp_path / "m" / "config.json").read_text())
    far, f1 = info["thresholds"]["far"], info["thresholds"]["f1"]
    assert far["target_far"] == 0.05 and far["achieved_far"] <= 0.05 and 0.0 <= far["value"] <= 1.0
    assert far["num_videos"] == 5 and 0.0 < f1["f1"] <= 1.0
    loaded = load_checkpoint(tmp_path / "m")
    chosen = stored_threshold(loaded.info)
    assert chosen.value == far["value"] and chosen.source == "far" and "5% false alarms" in chosen.description
    assert stored_threshold(loaded.info, 0.3).value == 0.3  # an explicit threshold wins


def test_old_checkpoint_without_thresholds_uses_half_with_a_notice(tmp_path, caplog, monkeypatch):
    from vad.data.groundtruth import GroundTruth

    ds, gt = planted_dataset()
    short = TrainConfig(**{**FAST.__dict__, "epochs": 1})
    train_model(ds, ModelConfig(arch="mil_mlp", feature_dim=D), short, tmp_path / "m",
                {r.name: gt[r.name] for r in ds.split("val")}, progress=False)
    path = tmp_path / "m" / "config.json"
    info = json.loads(path.read_text())
    del info["thresholds"], info["calibration"]  # what a checkpoint from before calibration holds
    path.write_text(json.dumps(info))
    loaded = load_checkpoint(tmp_path / "m")
    monkeypatch.setattr("vad.engine.evaluate.load_ground_truth", lambda source, records, split: GroundTruth(
        {r.name: gt[r.name] for r in records}, {r.name: r.cls for r in records if r.label}))
    with caplog.at_level(logging.WARNING):
        result = evaluate_model(loaded, ds, "test", GroundTruthSource())
    assert result.report.threshold == 0.5 and "default" in result.report.threshold_source
    notices = [r.getMessage() for r in caplog.records if "no calibrated threshold" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert not math.isnan(result.report.median_time_to_detect_s) or result.report.missed > 0
