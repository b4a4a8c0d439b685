"""`vad benchmark`'s recipes on miniature fakes of each dataset's distributed layout (tests/vad/engine/recipe_helpers):
the layout check names every missing part, the protocol runs end to end from published features, the ground truth
the run writes is the annotation's, validation comes from the train list only, and the reported number is what a
fresh evaluation of the files the run wrote gives."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from tests.vad.engine.recipe_helpers import (
    SH_ABNORMAL,
    SH_TEST,
    SH_TRAIN,
    UCF_TEST,
    XD_TEST,
    XD_TRAIN,
    sh_layout,
    ucf_layout,
    xd_layout,
)
from vad.engine.recipes.datasets import RECIPES
from vad.engine.recipes.layout import check_layout
from vad.engine.recipes.runner import BenchmarkConfig, run_benchmark
from vad.engine.train import TrainConfig
from vad.errors import LayoutError
from vad.models.config import ModelConfig

NO_OVERRIDES = {"train_list": None, "test_list": None, "ground_truth": None}


def _config(**kwargs) -> BenchmarkConfig:
    return BenchmarkConfig(model=ModelConfig(hidden=32),
                           train=TrainConfig(epochs=2, batch_size=4, num_snippets=8, device="cpu"), **kwargs)


def _missing(recipe: str, root, **kwargs) -> list[str]:
    with pytest.raises(LayoutError) as info:
        check_layout(RECIPES[recipe], root, {**NO_OVERRIDES, **kwargs.pop("overrides", {})}, **kwargs)
    return info.value.missing


def _gt_of(out) -> dict[str, np.ndarray]:
    """Per-video frame labels of the ``gt-test.npy`` + ``test.list`` a run wrote (features cover 16 frames a
    snippet, 6 snippets a video in the fakes)."""
    names = (out / "test.list").read_text().split()
    gt = np.load(out / "gt-test.npy")
    assert gt.size == 96 * len(names)
    return {n: gt[96 * i: 96 * (i + 1)] for i, n in enumerate(names)}


def _check_splits(doc: dict, train: list[str], test: list[str]) -> None:
    """Validation is carved from the train list (both classes), never holds a test video; test is the test list."""
    splits = doc["run"]["splits"]
    assert splits["val"] and set(splits["val"]) <= set(train)
    assert set(splits["train"]) | set(splits["val"]) == set(train) and not set(splits["train"]) & set(splits["val"])
    assert not set(splits["val"]) & set(test) and splits["test"] == test


def _check_reported(out, doc: dict, fmt: str) -> None:
    """The table's number is what `vad eval` gives on the files the run wrote."""
    from vad.engine.evaluate import GroundTruthSource, evaluate_dir

    source = GroundTruthSource(gt_npy=str(out / "gt-test.npy"), gt_list=str(out / "test.list"))
    report = evaluate_dir(out / "model", out / "features.list", str(out / "labels.csv"), "test", source, fmt,
                          device="cpu").report
    metric = {"frame AUC": "auc", "frame AP": "ap"}[doc["metric"]]
    assert doc["ours"]["value"] == pytest.approx(getattr(report, metric))
    assert json.loads((out / "results.json").read_text())["ours"]["value"] == pytest.approx(getattr(report, metric))


def test_xd_violence_from_published_crop_features_end_to_end(tmp_path):
    root = xd_layout(tmp_path / "xd")
    out = tmp_path / "out"
    result = run_benchmark("xd-violence", root, out, _config(features=str(root / "i3d-features")), progress=False,
                           echo=lambda _: None)
    doc = result.document
    assert doc["metric"] == "frame AP" and doc["ours"]["value"] == doc["ours"]["ap"]
    assert [a["method"] for a in doc["anchors"]] == ["RTFM", "UR-DMU", "VadCLIP"]
    assert [a["value"] for a in doc["anchors"]] == pytest.approx([0.7781, 0.8166, 0.8451])
    _check_splits(doc, XD_TRAIN, XD_TEST)
    gt = _gt_of(out)
    assert np.flatnonzero(gt["v=eee__#1_label_B4-0-0"]).tolist() == list(range(16, 48))
    assert np.flatnonzero(gt["Movie.Three.2010__#01-00-00_01-01-00_label_B6-0-0"]).tolist() == [
        *range(0, 20), *range(70, 96)]  # the annotation line named the .mp4
    assert not gt["v=fff__#1_label_A"].any()
    _check_reported(out, doc, "urdmu")
    table = result.markdown.read_text()
    assert "| **vadgraph (this run)** |" in table and "| VadCLIP | AAAI 2024 | CLIP ViT-B/16 | 84.51 |" in table
    assert "vad train --features" in table and "vad eval --model" in table and "--format urdmu" in table


def test_shanghaitech_from_published_rtfm_features_end_to_end(tmp_path):
    root = sh_layout(tmp_path / "sh")
    out = tmp_path / "out"
    doc = run_benchmark("shanghaitech", root, out, _config(), progress=False, echo=lambda _: None).document
    assert doc["metric"] == "frame AUC" and doc["ours"]["value"] == doc["ours"]["auc"]
    assert [(a["method"], a["value"]) for a in doc["anchors"]] == [
        ("RTFM", pytest.approx(0.9721)), ("LEGO / EGO fusion (the fusion vadgraph follows)", pytest.approx(0.9726))]
    _check_splits(doc, SH_TRAIN, SH_TEST)
    with open(out / "labels.csv", newline="") as fh:
        labels = {row["name"]: int(row["label"]) for row in csv.DictReader(fh)}
    assert labels == {n: int(n in SH_ABNORMAL) for n in SH_TRAIN + SH_TEST}  # abnormal = has a frame mask
    gt = _gt_of(out)
    for name in SH_TEST:  # masks are 100 frames long; the features cover 96
        start, end = SH_ABNORMAL.get(name, (0, 0))
        assert np.flatnonzero(gt[name]).tolist() == list(range(start, min(end, 96)))
    _check_reported(out, doc, "rtfm")


@pytest.mark.parametrize("part", ["train_list", "test_list", "ground_truth"])
def test_each_missing_part_is_named(tmp_path, part):
    root = ucf_layout(tmp_path / "ucf")
    path = {"train_list": root / "Anomaly_Detection_splits" / "Anomaly_Train.txt",
            "test_list": root / "Anomaly_Detection_splits" / "Anomaly_Test.txt",
            "ground_truth": root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"}[part]
    path.unlink()
    missing = _missing("ucf-crime", root)
    assert len(missing) == 1 and path.name in missing[0] and f"`{part}`" in missing[0]


def test_every_problem_of_a_layout_is_reported_at_once(tmp_path):
    root = ucf_layout(tmp_path / "ucf")
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").unlink()
    (root / "Anomaly-Videos-Part-1" / "Abuse" / "Abuse028_x264.mp4").unlink()
    (root / "Anomaly_Detection_splits" / "Anomaly_Train.txt").unlink()
    missing = _missing("ucf-crime", root, source="videos")
    assert len(missing) == 3
    assert "Anomaly_Train.txt" in missing[0] and "Temporal_Anomaly_Annotation" in missing[1]
    assert missing[2].startswith("videos: 1 of 4 listed videos") and "Abuse028_x264" in missing[2]
    auto = _missing("ucf-crime", root)  # auto: the videos, else published features; both shortfalls named
    assert auto[2].startswith("videos:") and auto[3].startswith("features: no folder")


def test_annotation_must_cover_the_test_videos(tmp_path):
    root = ucf_layout(tmp_path / "ucf")
    ann = root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    ann.write_text("".join(ln + "\n" for ln in ann.read_text().splitlines() if "Normal_Videos_006" not in ln))
    missing = _missing("ucf-crime", root)
    assert missing == [f"temporal annotation of the test videos: 1 of {len(UCF_TEST)} test videos have no entry in "
                       f"{ann} (first: Normal_Videos_006_x264)"]
    xd = xd_layout(tmp_path / "xd")
    (xd / "annotations.txt").write_text("v=eee__#1_label_B4-0-0 16 48\n")  # a violent test video lost its line
    feats = str(xd / "i3d-features")
    assert "Movie.Three.2010__#01-00-00_01-01-00_label_B6-0-0" in _missing("xd-violence", xd, features=feats)[0]


def test_leaks_one_class_splits_and_partial_features_are_problems(tmp_path):
    root = xd_layout(tmp_path / "xd")
    feats = str(root / "i3d-features")
    train = root / "list" / "XD_Train.list"
    train.write_text(train.read_text() + "/x/RGBTest/v=eee__#1_label_B4-0-0__0.npy\n")
    assert "in both the train and the test list" in _missing("xd-violence", root, features=feats)[0]
    train.write_text("".join(f"{n}\n" for n in XD_TRAIN if "_label_A" in n))
    assert "the train list holds only normal videos" in _missing("xd-violence", root, features=feats)[0]
    train.write_text("".join(f"{n}\n" for n in XD_TRAIN))
    for crop in (root / "i3d-features" / "RGB").glob("v=aaa*"):
        crop.unlink()
    missing = _missing("xd-violence", root, features=feats, source="features")
    assert len(missing) == 1 and "features: 1 of 10 listed videos" in missing[0] and "v=aaa" in missing[0]


def test_shanghaitech_without_masks_or_features(tmp_path):
    root = sh_layout(tmp_path / "sh")
    shutil.rmtree(root / "testing")
    shutil.rmtree(root / "features")
    missing = _missing("shanghaitech", root)
    assert "test_frame_mask" in missing[0] and "`ground_truth`" in missing[0]
    assert missing[1].startswith("videos: 10 of 10") and "ffmpeg" in missing[1]  # its test set ships as frames
    assert missing[2].startswith("features: no folder")


def test_overrides_point_at_parts_with_other_names(tmp_path):
    root = sh_layout(tmp_path / "sh")
    (root / "SH_Train.txt").rename(root / "my_train.txt")
    layout = check_layout(RECIPES["shanghaitech"], root, {**NO_OVERRIDES, "train_list": "my_train.txt"})
    assert layout.splits["train"] == SH_TRAIN and layout.kind == "features" and layout.fmt == "rtfm"
    assert "nope.txt not found (given with `train_list`)" in _missing(
        "shanghaitech", root, overrides={"train_list": "nope.txt"})[0]
