"""`vad fit-normal` end to end: fit on a feature directory, then `vad eval` and `vad score` use the model as is."""
import json

from apps.cli import main
from tests.media import write_video


def test_fit_normal_then_eval_and_score(tmp_path, trained_inputs, capsys):
    bench, feats = trained_inputs
    out = tmp_path / "oneclass"
    assert main(["-q", "fit-normal", "--features", str(feats), "--out", str(out), "--device", "cpu",
                 "--memory-size", "64", "--memory.pool", "256", "--val-fraction", "0.3"]) == 0
    printed = capsys.readouterr().out
    assert "fit-normal: 8 normal videos; memory clip" in printed and "calibrated: 1% false alarms" in printed
    info = json.loads((out / "config.json").read_text())
    assert info["model"]["arch"] == "oneclass" and info["fit_stats"]["kept"]["clip"] <= 64
    assert info["thresholds"]["far"]["num_videos"] == 4

    assert main(["-q", "eval", "--model", str(out), "--features", str(feats), "--benchmark", str(bench),
                 "--device", "cpu", "--out", str(tmp_path / "m.json")]) == 0
    table = capsys.readouterr().out
    assert "frame AUC" in table and "time to detect" in table and "threshold: " in table
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["threshold"] == info["thresholds"]["far"]["value"]

    video = write_video(tmp_path / "v.mp4", num_frames=40, seed=5)
    assert main(["-q", "score", str(video), "--model", str(out), "--out", str(tmp_path / "s"), "--device", "cpu"]) == 0
    assert "(calibrated: 1% false alarms on 4 normal validation videos)" in capsys.readouterr().out
    assert (tmp_path / "s" / "v.scores.csv").exists()
