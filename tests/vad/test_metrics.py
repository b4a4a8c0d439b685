"""Metrics: snippet→frame expansion, agreement with scikit-learn, hand-computed FAR and per-class AUC."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vad.engine.metrics import EvalReport, evaluate, expand_to_frames
from vad.errors import MetricsError, VadError


def test_expand_repeats_truncates_and_pads():
    s = np.array([0.1, 0.5, 0.9])
    assert np.allclose(expand_to_frames(s, 6, 2), [0.1, 0.1, 0.5, 0.5, 0.9, 0.9])
    assert np.allclose(expand_to_frames(s, 5, 2), [0.1, 0.1, 0.5, 0.5, 0.9])
    assert np.allclose(expand_to_frames(s, 8, 2), [0.1, 0.1, 0.5, 0.5, 0.9, 0.9, 0.9, 0.9])
    assert expand_to_frames(s, 48).shape == (48,)
    with pytest.raises(MetricsError):
        expand_to_frames(np.array([]), 4)


def _case():
    gt = {
        "Fire_1": np.array([0, 1, 1, 0], np.uint8),
        "Running_2": np.array([1, 1, 0], np.uint8),
        "Normal_3": np.array([0, 0, 0], np.uint8),
        "Normal_4": np.array([0, 0], np.uint8),
    }
    scores = {
        "Fire_1": np.array([0.2, 0.9, 0.7, 0.6]),
        "Running_2": np.array([0.4, 0.3, 0.5]),
        "Normal_3": np.array([0.1, 0.6, 0.5]),
        "Normal_4": np.array([0.3, 0.2]),
        "Extra_9": np.array([0.5]),  # not in the ground truth: ignored
    }
    classes = {"Fire_1": "Fire", "Running_2": "Running", "Normal_3": "Normal", "Normal_4": "Normal"}
    return scores, gt, classes


def test_matches_sklearn_and_hand_computed():
    scores, gt, classes = _case()
    rep = evaluate(scores, gt, classes)
    names = list(gt)
    y = np.concatenate([gt[n] for n in names])
    s = np.concatenate([scores[n] for n in names])
    assert rep.auc == pytest.approx(roc_auc_score(y, s))
    assert rep.ap == pytest.approx(average_precision_score(y, s))
    abn = ["Fire_1", "Running_2"]
    assert rep.auc_abnormal == pytest.approx(roc_auc_score(np.concatenate([gt[n] for n in abn]),
                                                           np.concatenate([scores[n] for n in abn])))
    # FAR at 0.5 on normal frames [0.1, 0.6, 0.5, 0.3, 0.2]: 0.6 and 0.5 alarm (>=) -> 2/5.
    assert rep.far == pytest.approx(0.4)
    # Fire: positives {0.9, 0.7}; negatives {0.2, 0.6} of Fire_1 + {0.1, 0.6, 0.5, 0.3, 0.2} of normals (7):
    # every positive beats every negative -> 1.0.
    assert rep.per_class_auc["Fire"] == pytest.approx(1.0)
    # Running: positives {0.4, 0.3}; negatives {0.5} + {0.1, 0.6, 0.5, 0.3, 0.2}.
    # 0.4 beats 0.1, 0.3, 0.2 -> 3;  0.3 beats 0.1, 0.2, ties 0.3 -> 2.5;  total 5.5 / (2*6).
    assert rep.per_class_auc["Running"] == pytest.approx(5.5 / 12)
    assert (rep.num_videos, rep.num_abnormal_videos, rep.num_frames, rep.num_abnormal_frames) == (4, 2, 12, 4)
    assert rep.class_counts == {"Normal": 2, "Fire": 1, "Running": 1}
    assert rep.notes == []


def test_report_json_and_table():
    scores, gt, classes = _case()
    rep = evaluate(scores, gt, classes)
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["auc"] == pytest.approx(rep.auc) and set(d["per_class_auc"]) == {"Fire", "Running"}
    table = rep.format_table()
    assert "frame AUC" in table and "Running" in table and "FAR @ 0.5" in table
    assert isinstance(rep, EvalReport)


def test_without_classes_and_threshold():
    scores, gt, _ = _case()
    rep = evaluate(scores, gt, None, threshold=0.55)
    assert rep.per_class_auc == {} and rep.far == pytest.approx(0.2)


def test_degenerate_cases_are_nan_with_notes():
    gt = {"Normal_1": np.zeros(4, np.uint8)}
    rep = evaluate({"Normal_1": np.linspace(0, 1, 4)}, gt)
    assert math.isnan(rep.auc) and math.isnan(rep.ap) and math.isnan(rep.auc_abnormal)
    assert rep.far == pytest.approx(0.5) and rep.notes
    assert rep.to_dict()["auc"] is None and "n/a" in rep.format_table()
    gt = {"Fire_1": np.ones(3, np.uint8)}
    rep = evaluate({"Fire_1": np.ones(3)}, gt, {"Fire_1": "Fire"})
    assert math.isnan(rep.auc) and math.isnan(rep.far) and math.isnan(rep.per_class_auc["Fire"])


def test_bad_input_names_the_video():
    scores, gt, _ = _case()
    with pytest.raises(MetricsError, match="Running_2"):
        evaluate({**scores, "Running_2": np.zeros(5)}, gt)
    with pytest.raises(VadError, match="Normal_4"):
        evaluate({k: v for k, v in scores.items() if k != "Normal_4"}, gt)
    with pytest.raises(MetricsError, match="Fire_1"):
        evaluate({**scores, "Fire_1": np.array([0.1, np.nan, 0.2, 0.3])}, gt)
    with pytest.raises(MetricsError, match="Fire_1"):
        evaluate(scores, {**gt, "Fire_1": np.array([0, 2, 1, 0])})
    with pytest.raises(MetricsError, match="Running_2"):
        evaluate(scores, gt, {"Fire_1": "Fire"})
    with pytest.raises(MetricsError):
        evaluate(scores, {})


def test_leak_auc_hand_computed():
    """Leak AUC ranks the normal frames of abnormal videos against normal videos' frames (anomalous frames out)."""
    gt = {"A": np.array([0, 0, 1, 1]), "N": np.array([0, 0, 0])}
    # normal frames of A: 0.6, 0.2; frames of N: 0.1, 0.3, 0.5 -> pairs won: 0.6 beats 3, 0.2 beats 1 = 4 / 6
    scores = {"A": np.array([0.6, 0.2, 0.9, 0.95]), "N": np.array([0.1, 0.3, 0.5])}
    report = evaluate(scores, gt)
    assert math.isclose(report.leak_auc, 4 / 6)
    # a model that lifts the whole abnormal video has leak 1; one that only lifts the event has leak < 1
    lifted = {"A": np.array([0.8, 0.8, 0.9, 0.9]), "N": np.array([0.1, 0.1, 0.1])}
    assert evaluate(lifted, gt).leak_auc == 1.0
    assert "leak AUC" in report.format_table()


def test_leak_auc_undefined_without_normal_videos():
    report = evaluate({"A": np.array([0.1, 0.9])}, {"A": np.array([0, 1])})
    assert math.isnan(report.leak_auc) and any("leak AUC" in n for n in report.notes)
