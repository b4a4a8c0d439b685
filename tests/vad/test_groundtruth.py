"""Ground-truth readers: concatenated gt-*.npy + list, UCF and XD-Violence annotation files, ShanghaiTech frame
masks, synth benchmark."""
from __future__ import annotations

import numpy as np
import pytest

from vad.data.groundtruth import (
    list_names,
    read_frame_masks,
    read_gt_npy,
    read_synth_gt,
    read_ucf_annotations,
    read_xd_annotations,
)
from vad.errors import GroundTruthError
from vad.synth.benchmark import SynthConfig, read_labels
from vad.synth.generate import make_benchmark

ANNOTATION = """Abuse028_x264.mp4  Abuse  2  5  -1  -1
Arrest001_x264.mp4  Arrest  0  2  6  8
Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1
"""


def test_read_gt_npy_splits_in_list_order(tmp_path):
    gt = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0], np.uint8)
    np.save(tmp_path / "gt-ucf.npy", gt)
    (tmp_path / "test.list").write_text("/data/Abuse028_x264_i3d.npy\n/data/Normal_Videos_003_x264_i3d.npy\n")
    out = read_gt_npy(tmp_path / "gt-ucf.npy", tmp_path / "test.list", [6, 4])
    assert out.names == ["Abuse028_x264", "Normal_Videos_003_x264"]
    assert out.frames["Abuse028_x264"].tolist() == [0, 0, 1, 1, 1, 0]
    assert out.classes == {"Abuse028_x264": "Abuse", "Normal_Videos_003_x264": "Normal"}
    assert out.labels() == {"Abuse028_x264": 1, "Normal_Videos_003_x264": 0}
    assert np.array_equal(out.concatenated(), gt)
    same = read_gt_npy(tmp_path / "gt-ucf.npy", tmp_path / "test.list",
                       {"Abuse028_x264": 6, "Normal_Videos_003_x264": 4})
    assert same.frames.keys() == out.frames.keys()


def test_read_gt_npy_mismatches(tmp_path):
    np.save(tmp_path / "gt.npy", np.zeros(10, np.uint8))
    (tmp_path / "a.list").write_text("Abuse028_x264.npy\nNormal_Videos_003_x264.npy\n")
    with pytest.raises(GroundTruthError, match="10 frames.*have 11"):
        read_gt_npy(tmp_path / "gt.npy", tmp_path / "a.list", [6, 5])
    with pytest.raises(GroundTruthError, match="Normal_Videos_003_x264"):
        read_gt_npy(tmp_path / "gt.npy", tmp_path / "a.list", {"Abuse028_x264": 10})
    with pytest.raises(GroundTruthError, match="2 videos but 3"):
        read_gt_npy(tmp_path / "gt.npy", tmp_path / "a.list", [4, 3, 3])
    np.save(tmp_path / "bad.npy", np.full(10, 2, np.uint8))
    with pytest.raises(GroundTruthError, match="bad.npy"):
        read_gt_npy(tmp_path / "bad.npy", tmp_path / "a.list", [6, 4])
    with pytest.raises(GroundTruthError, match="nope.npy"):
        read_gt_npy(tmp_path / "nope.npy", tmp_path / "a.list", [6, 4])


def test_read_ucf_annotations(tmp_path):
    (tmp_path / "ann.txt").write_text(ANNOTATION)
    counts = {"Arrest001_x264": 7, "Abuse028_x264": 6, "Normal_Videos_003_x264": 3}
    gt = read_ucf_annotations(tmp_path / "ann.txt", counts)
    assert gt.names == list(counts)
    assert gt.frames["Abuse028_x264"].tolist() == [0, 0, 1, 1, 1, 0]
    assert gt.frames["Arrest001_x264"].tolist() == [1, 1, 0, 0, 0, 0, 1]  # second window clipped at 7 frames
    assert gt.classes == {"Arrest001_x264": "Arrest", "Abuse028_x264": "Abuse", "Normal_Videos_003_x264": "Normal"}
    with pytest.raises(GroundTruthError, match="Stealing019_x264"):
        read_ucf_annotations(tmp_path / "ann.txt", {**counts, "Stealing019_x264": 5})
    with pytest.raises(GroundTruthError, match="Abuse028_x264"):
        read_ucf_annotations(tmp_path / "ann.txt", {"Abuse028_x264": 2})  # the window starts past the end
    (tmp_path / "broken.txt").write_text("Abuse028_x264.mp4  Abuse  5  2  -1  -1\n")
    with pytest.raises(GroundTruthError, match="broken.txt:1"):
        read_ucf_annotations(tmp_path / "broken.txt", {"Abuse028_x264": 6})
    (tmp_path / "short.txt").write_text("Abuse028_x264.mp4  Abuse\n")
    with pytest.raises(GroundTruthError, match="short.txt:1"):
        read_ucf_annotations(tmp_path / "short.txt", {"Abuse028_x264": 6})


XD = ("v=wVey5JDRf_g__#00-00-00_00-01-20_label_B6-0-0 2 4 6 9\n"
      "Bad.Boys.1995__#01-33-51_01-34-37_label_B2-0-0.mp4 0 3\n")  # a published line names the .mp4


def test_read_xd_annotations(tmp_path):
    (tmp_path / "annotations.txt").write_text(XD)
    counts = {"v=wVey5JDRf_g__#00-00-00_00-01-20_label_B6-0-0": 8,
              "Bad.Boys.1995__#01-33-51_01-34-37_label_B2-0-0": 5,
              "A.Beautiful.Mind.2001__#00-25-20_00-26-20_label_A": 4}
    gt = read_xd_annotations(tmp_path / "annotations.txt", counts)
    assert gt.frames["v=wVey5JDRf_g__#00-00-00_00-01-20_label_B6-0-0"].tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    assert gt.frames["Bad.Boys.1995__#01-33-51_01-34-37_label_B2-0-0"].tolist() == [1, 1, 1, 0, 0]
    assert not gt.frames["A.Beautiful.Mind.2001__#00-25-20_00-26-20_label_A"].any()  # normal: no line
    assert list(gt.classes.values()) == ["Car accident", "Shooting", "Normal"]
    with pytest.raises(GroundTruthError, match="violent video v=x__#1_label_G-0-0"):
        read_xd_annotations(tmp_path / "annotations.txt", {"v=x__#1_label_G-0-0": 4})
    (tmp_path / "odd.txt").write_text("v=x__#1_label_G-0-0 2 4 6\n")
    with pytest.raises(GroundTruthError, match="odd.txt:1"):
        read_xd_annotations(tmp_path / "odd.txt", {"v=x__#1_label_G-0-0": 8})


def test_read_frame_masks(tmp_path):
    np.save(tmp_path / "01_0014.npy", np.array([0, 1, 1, 0, 0, 1], np.uint8))
    gt = read_frame_masks(tmp_path, {"01_0014": 4, "01_001": 3})
    assert gt.frames["01_0014"].tolist() == [0, 1, 1, 0]  # cut to the frames the features cover
    assert read_frame_masks(tmp_path, {"01_0014": 8}).frames["01_0014"].tolist() == [0, 1, 1, 0, 0, 1, 0, 0]
    assert not gt.frames["01_001"].any()  # no mask: a normal video of the original training set
    assert gt.classes == {"01_0014": "Abnormal", "01_001": "Normal"}
    np.save(tmp_path / "01_0015.npy", np.array([0, 2, 1]))
    with pytest.raises(GroundTruthError, match="01_0015.npy"):
        read_frame_masks(tmp_path, {"01_0015": 3})
    with pytest.raises(GroundTruthError, match="not found"):
        read_frame_masks(tmp_path / "nope", {"01_0014": 3})


def test_list_names_keys_paths_crops_and_names_alike(tmp_path):
    (tmp_path / "a.list").write_text("Abuse/Abuse001_x264.mp4\n/x/RGB/v=a__#1_label_A__0.npy\n"
                                     "/x/RGB/v=a__#1_label_A__1.npy\n\n01_0014_i3d.npy\n01_002\n")
    assert list_names(tmp_path / "a.list") == ["Abuse001_x264", "v=a__#1_label_A", "01_0014", "01_002"]


def test_synth_three_readers_agree(tmp_path):
    bench = make_benchmark(tmp_path / "s", SynthConfig(videos=8, seed=5, min_frames=24, max_frames=32),
                           progress=False)
    gt = read_synth_gt(bench.root, "test")
    videos = {v.name: v for v in read_labels(bench.root)}
    assert gt.names == [v.name for v in bench.split("test")]
    assert all(gt.classes[n] == videos[n].cls for n in gt.names)
    counts = {n: videos[n].num_frames for n in gt.names}
    from_npy = read_gt_npy(bench.gt_paths["test"], bench.list_paths["test"], counts)
    from_ann = read_ucf_annotations(bench.annotation_path, counts)
    for n in gt.names:
        assert np.array_equal(gt.frames[n], from_npy.frames[n]) and np.array_equal(gt.frames[n], from_ann.frames[n])
        v = videos[n]
        assert gt.frames[n].sum() == (v.end - v.start if v.label else 0)
    assert from_npy.classes == gt.classes == from_ann.classes
    assert len(read_synth_gt(bench.root, None).frames) == 8
    with pytest.raises(GroundTruthError, match="split"):
        read_synth_gt(bench.root, "dev")
    with pytest.raises(GroundTruthError, match="labels.csv"):
        read_synth_gt(tmp_path)
