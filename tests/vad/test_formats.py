"""Peers' feature formats (RTFM, UR-DMU/PEL4VAD, VadCLIP) read into VideoFeatures, from files in their layout."""
from __future__ import annotations

import numpy as np
import pytest

from vad.data.formats import (
    detect_format,
    infer_label_class,
    read_peer_features,
    read_rtfm,
    read_urdmu,
    read_vadclip_csv,
    video_name,
)
from vad.errors import FeatureError


def _rng():
    return np.random.default_rng(0)


@pytest.fixture
def rtfm(tmp_path):
    """RTFM layout: per-video (T, 10, D) .npy with the _i3d suffix; list with absolute paths, abnormal first."""
    folder = tmp_path / "UCF_Test_ten_crop_i3d"
    folder.mkdir()
    arrays = {}
    lines = []
    for name, t in (("Abuse028_x264", 5), ("Explosion002_x264", 3), ("Normal_Videos_003_x264", 4)):
        arrays[name] = _rng().normal(size=(t, 10, 8)).astype(np.float32)
        np.save(folder / f"{name}_i3d.npy", arrays[name])
        lines.append(str(folder / f"{name}_i3d.npy"))
    (tmp_path / "ucf-i3d-test.list").write_text("\n".join(lines) + "\n")
    return tmp_path, arrays


def test_rtfm(rtfm):
    root, arrays = rtfm
    items = read_rtfm(root / "ucf-i3d-test.list")
    assert [it.name for it in items] == list(arrays)
    assert [(it.label, it.cls) for it in items] == [(1, "Abuse"), (1, "Explosion"), (0, "Normal")]
    first = items[0].features
    assert np.allclose(first.clip, arrays["Abuse028_x264"].mean(axis=1))
    assert first.meta.source_format == "rtfm" and first.meta.snippet_len == 16 and first.meta.num_frames == 5 * 16
    assert np.allclose(read_rtfm(root / "ucf-i3d-test.list", crop=3)[1].features.clip,
                       arrays["Explosion002_x264"][:, 3])
    assert detect_format(root / "ucf-i3d-test.list") == "rtfm"


def test_rtfm_relative_paths_root_and_num_abnormal(rtfm, tmp_path):
    root, _ = rtfm
    # The authors' absolute paths do not exist here: root + base name finds the files.
    (tmp_path / "sh.list").write_text("/home/someone/SH_Test/Abuse028_x264_i3d.npy\n"
                                      "/home/someone/SH_Test/Normal_Videos_003_x264_i3d.npy\n")
    items = read_rtfm(tmp_path / "sh.list", root=root / "UCF_Test_ten_crop_i3d", num_abnormal=1)
    assert [it.label for it in items] == [1, 0]
    np.save(root / "UCF_Test_ten_crop_i3d" / "01_0015_i3d.npy", np.zeros((2, 10, 8), np.float32))
    (tmp_path / "st.list").write_text("UCF_Test_ten_crop_i3d/01_0015_i3d.npy\n")
    assert read_rtfm(tmp_path / "st.list")[0].label == -1  # ShanghaiTech names carry no label


def test_rtfm_bad_input(rtfm, tmp_path):
    root, _ = rtfm
    np.save(tmp_path / "flat.npy", np.zeros((4, 8), np.float32))
    (tmp_path / "bad.list").write_text(str(tmp_path / "flat.npy") + "\n")
    with pytest.raises(FeatureError, match="flat.npy"):
        read_rtfm(tmp_path / "bad.list")
    (tmp_path / "missing.list").write_text(str(tmp_path / "nope_i3d.npy") + "\n")
    with pytest.raises(FeatureError, match="nope_i3d.npy"):
        read_rtfm(tmp_path / "missing.list")
    with pytest.raises(FeatureError, match="crop"):
        read_rtfm(root / "ucf-i3d-test.list", crop=10)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.list").write_text(str(tmp_path / "obj.npy") + "\n")
    with pytest.raises(FeatureError, match="obj.npy"):  # never unpickles
        read_rtfm(tmp_path / "obj.list")
    (tmp_path / "empty.list").write_text("\n")
    with pytest.raises(FeatureError, match="empty"):
        read_rtfm(tmp_path / "empty.list")


def _write_crops(folder, name, crops, t=4, d=6, skip=()):
    arrays = []
    for k in range(crops):
        a = _rng().normal(size=(t, d)).astype(np.float32) + k
        arrays.append(a)
        if k not in skip:
            np.save(folder / f"{name}__{k}.npy", a)
    return np.stack(arrays)


def test_urdmu_folder_and_list(tmp_path):
    xd = "v=abc123__#1_label_B2-0-0"
    normal = "A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A"
    a = _write_crops(tmp_path, xd, 5)
    b = _write_crops(tmp_path, normal, 5, t=3)
    items = read_urdmu(tmp_path, crops=5)
    got = {it.name: it for it in items}
    assert (got[xd].label, got[xd].cls) == (1, "Shooting") and (got[normal].label, got[normal].cls) == (0, "Normal")
    assert np.allclose(got[xd].features.clip, a.mean(0))
    assert got[normal].features.meta.num_frames == 48 and got[normal].features.meta.source_format == "urdmu"
    # A PEL4VAD-style list naming each crop file: crops of a video collapse into one entry, list order kept.
    (tmp_path / "test.list").write_text("".join(f"{n}__{k}.npy\n" for n in (normal, xd) for k in range(5)))
    items = read_urdmu(tmp_path / "test.list", crop=2)
    assert [it.name for it in items] == [normal, xd]
    assert np.allclose(items[0].features.clip, b[2])
    assert detect_format(tmp_path) == "urdmu" and detect_format(tmp_path / "test.list") == "urdmu"
    assert len(read_peer_features(tmp_path / "test.list")) == 2


def test_urdmu_bad_input(tmp_path):
    _write_crops(tmp_path, "Abuse028_x264", 10, skip=(3,))
    with pytest.raises(FeatureError, match=r"Abuse028_x264__3\.npy"):
        read_urdmu(tmp_path)
    np.save(tmp_path / "Abuse028_x264__3.npy", np.zeros((4, 6, 2), np.float32))  # wrong ndim
    with pytest.raises(FeatureError, match=r"Abuse028_x264__3\.npy"):
        read_urdmu(tmp_path)
    np.save(tmp_path / "Abuse028_x264__3.npy", np.zeros((5, 6), np.float32))  # T disagrees
    with pytest.raises(FeatureError, match="Abuse028_x264"):
        read_urdmu(tmp_path)
    with pytest.raises(FeatureError, match="crop"):
        read_urdmu(tmp_path, crops=12)
    (tmp_path / "other").mkdir()
    with pytest.raises(FeatureError, match="other"):
        read_urdmu(tmp_path / "other")


def test_vadclip_csv(tmp_path):
    feats = tmp_path / "UCFClipFeatures"
    feats.mkdir()
    a = _write_crops(feats, "Abuse028_x264", 10, d=512)
    _write_crops(feats, "Normal_Videos_003_x264", 10, t=6, d=512)
    rows = ["path,label"]
    rows += [f"{feats}/Abuse028_x264__{k}.npy,Abuse" for k in range(10)]
    rows += [f"{feats}/Normal_Videos_003_x264__{k}.npy,Normal" for k in range(10)]
    (tmp_path / "ucf_CLIP_rgb.csv").write_text("\n".join(rows) + "\n")
    items = read_vadclip_csv(tmp_path / "ucf_CLIP_rgb.csv")
    assert [(it.name, it.label, it.cls) for it in items] == [("Abuse028_x264", 1, "Abuse"),
                                                            ("Normal_Videos_003_x264", 0, "Normal")]
    assert np.allclose(items[0].features.clip, a.mean(0)) and items[0].features.dim == 512
    assert items[1].features.meta.num_frames == 6 * 16 and items[1].features.meta.source_format == "vadclip"
    # Test CSV: one crop per video; XD codes as labels.
    (tmp_path / "xd_test.csv").write_text(f"path,label\n{feats}/Abuse028_x264__0.npy,B1\n")
    (item,) = read_vadclip_csv(tmp_path / "xd_test.csv")
    assert (item.label, item.cls) == (1, "Fighting") and np.allclose(item.features.clip, a[0])
    assert detect_format(tmp_path / "ucf_CLIP_rgb.csv") == "vadclip"


def test_vadclip_bad_input(tmp_path):
    (tmp_path / "nolabel.csv").write_text("path,class\nx__0.npy,Abuse\n")
    with pytest.raises(FeatureError, match="label"):
        read_vadclip_csv(tmp_path / "nolabel.csv")
    (tmp_path / "missing.csv").write_text(f"path,label\n{tmp_path}/Gone001_x264__0.npy,Abuse\n")
    with pytest.raises(FeatureError, match="Gone001_x264__0.npy"):
        read_vadclip_csv(tmp_path / "missing.csv")
    with pytest.raises(FeatureError, match="crop"):
        _write_crops(tmp_path, "Abuse028_x264", 1, d=4)
        (tmp_path / "one.csv").write_text(f"path,label\n{tmp_path}/Abuse028_x264__0.npy,Abuse\n")
        read_vadclip_csv(tmp_path / "one.csv", crop=3)
    with pytest.raises(FeatureError):
        detect_format(tmp_path / "nolabel.csv")


def test_names_and_labels():
    assert video_name("/x/y/Abuse028_x264__7.npy") == "Abuse028_x264"
    assert video_name("Abuse028_x264_i3d.npy") == "Abuse028_x264"
    assert video_name("videos/Running_0007.avi") == "Running_0007"
    assert infer_label_class("Normal_Videos308_3_x264") == (0, "Normal")
    assert infer_label_class("RoadAccidents001_x264") == (1, "RoadAccidents")
    assert infer_label_class("WrongWay_0003") == (1, "WrongWay")
    assert infer_label_class("x__#1_label_G-B2-0") == (1, "Explosion")
    assert infer_label_class("01_0015") == (-1, "")
