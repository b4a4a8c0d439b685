"""`vad benchmark` from the command line: a miniature UCF-Crime built at test time (tiny videos, tiny random
backbone) runs end to end from its videos; the commands it prints repeat it; an incomplete layout is exit 2 with
one line per missing part and nothing written."""
from __future__ import annotations

import json
import shlex
import shutil

import numpy as np
import pytest

from apps.cli import main, parse
from tests.vad.engine.recipe_helpers import UCF_FRAMES, UCF_TEST, UCF_TRAIN, ucf_layout
from vad.data.formats import video_name

TINY = ["--backbone", "vadgraph-tiny-ViT", "--snippet-len", "8", "--extract.snippets.frames-per-snippet", "1",
        "--extract.backbone.device", "cpu", "--train.device", "cpu", "--epochs", "2", "--train.batch-size", "4",
        "--train.num-snippets", "8", "--model.hidden", "32"]


def test_incomplete_layout_is_exit_2_with_one_line_per_missing_part(tmp_path, capsys):
    root = ucf_layout(tmp_path / "ucf")
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").unlink()
    (root / "Anomaly_Detection_splits" / "Anomaly_Train.txt").unlink()
    shutil.rmtree(root / "Testing_Normal_Videos_Anomaly")
    out = tmp_path / "out"
    assert main(["benchmark", "ucf-crime", "--root", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith("vad: error: ") and "not a complete UCF-Crime layout (4 problem(s)" in lines[0]
    missing = [ln for ln in lines if ln.startswith("vad: missing: ")]
    assert len(missing) == 4 == len(lines) - 1
    assert "Anomaly_Train.txt" in missing[0] and "Temporal_Anomaly_Annotation_for_Testing_Videos.txt" in missing[1]
    assert "give its path with --train-list" in missing[0]  # the library says `train_list`; the CLI, its flag
    assert "videos: 2 of 4 listed videos" in missing[2] and "Normal_Videos_003_x264" in missing[2]
    assert "features: no folder" in missing[3] and "set --features to a folder" in missing[3]
    assert "Traceback" not in err and not out.exists()


def _words(command: str) -> list[str]:
    """A printed command's arguments after ``vad``."""
    words = shlex.split(command)
    return words[words.index("vad") + 1:]


def test_ucf_crime_from_videos_end_to_end_and_the_printed_commands_repeat_it(tmp_path, tiny_checkpoint, capsys):
    root = ucf_layout(tmp_path / "ucf")
    weights = shutil.copy(tiny_checkpoint, tmp_path / "tiny-random-seed0.safetensors")
    out = tmp_path / "out"
    argv = ["-q", "benchmark", "ucf-crime", "--root", str(root), "--out", str(out), "--pretrained", str(weights), *TINY]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    ours = doc["ours"]["value"]
    assert f"benchmark: UCF-Crime frame AUC {100 * ours:.2f} %" in printed and "RTFM 84.30" in printed
    assert ours == doc["ours"]["auc"] and len(doc["anchors"]) == 4
    assert any("random-initialised backbone" in note for note in doc["run"]["notes"])

    train, test = [video_name(e) for e in UCF_TRAIN], [video_name(e) for e in UCF_TEST]
    splits = doc["run"]["splits"]
    assert splits["val"] and set(splits["val"]) <= set(train) and not set(splits["val"]) & set(test)
    assert splits["test"] == test and set(splits["train"]) | set(splits["val"]) == set(train)
    gt = np.load(out / "gt-test.npy").reshape(len(test), UCF_FRAMES)  # test.list order = Anomaly_Test.txt order
    assert (out / "test.list").read_text().split() == test
    assert np.flatnonzero(gt[0]).tolist() == list(range(10, 25))  # Abuse028: 10 25 -1 -1
    assert np.flatnonzero(gt[1]).tolist() == [*range(0, 8), *range(30, 38)]  # Arrest001: two windows
    assert not gt[2:].any()

    extract, train_cmd, eval_cmd = doc["commands"]
    _, _, run_configs = parse(argv[1:])
    bench = run_configs[""]
    videos = (out / "videos.list").read_text().splitlines()
    assert extract.startswith("xargs -d") and len(videos) == len(train) + len(test)
    assert parse(_words(extract) + videos)[2][""] == bench.extract
    verb, ns, configs = parse(_words(train_cmd))
    assert (verb, ns.features, ns.labels, ns.format) == ("train", str(out / "features"), str(out / "labels.csv"),
                                                         "vadgraph")
    assert (configs["model"], configs["train"], configs["calibration"]) == (bench.model, bench.train,
                                                                           bench.calibration)
    (out / "eval-test.json").unlink()
    assert main(["-q", *_words(eval_cmd)]) == 0  # `vad eval` as printed gives the table's number
    assert json.loads((out / "eval-test.json").read_text())["auc"] == pytest.approx(ours)
    assert "| **vadgraph (this run)** |" in (out / "results.md").read_text()
