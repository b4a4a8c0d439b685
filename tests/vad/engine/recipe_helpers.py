"""Miniature fakes of the three benchmarks' distributed layouts, built at test time: the same file names and line
formats as the real ones (see vad/engine/recipes/datasets.py), a handful of videos, tiny features."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# UCF-Crime: list entries "Class/Name.mp4"; 3 abnormal + 3 normal to train on, 2 + 2 to test on
UCF_TRAIN = ["Abuse/Abuse001_x264.mp4", "Abuse/Abuse002_x264.mp4", "Arrest/Arrest002_x264.mp4",
             "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4",
             "Training_Normal_Videos_Anomaly/Normal_Videos002_x264.mp4",
             "Training_Normal_Videos_Anomaly/Normal_Videos003_x264.mp4"]
UCF_TEST = ["Abuse/Abuse028_x264.mp4", "Arrest/Arrest001_x264.mp4",
            "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
            "Testing_Normal_Videos_Anomaly/Normal_Videos_006_x264.mp4"]
UCF_ANNOTATION = ("Abuse028_x264.mp4  Abuse  10  25  -1  -1  \n"
                  "Arrest001_x264.mp4  Arrest  0  8  30  38  \n"
                  "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1  \n"
                  "Normal_Videos_006_x264.mp4  Normal  -1  -1  -1  -1  \n")
UCF_FRAMES = 40

# XD-Violence: names carry the label code; features are 5 per-crop files NAME__k.npy
XD_TRAIN = ["v=aaa__#1_label_B1-0-0", "Movie.One.2001__#00-01-00_00-02-00_label_B2-G-0", "v=bbb__#1_label_G-0-0",
            "v=ccc__#1_label_A", "Movie.Two.1999__#00-10-00_00-11-00_label_A", "v=ddd__#00-00-00_00-01-00_label_A"]
XD_TEST = ["v=eee__#1_label_B4-0-0", "Movie.Three.2010__#01-00-00_01-01-00_label_B6-0-0",
           "v=fff__#1_label_A", "Movie.Four.2005__#00-20-00_00-21-00_label_A"]
XD_ANNOTATION = ("v=eee__#1_label_B4-0-0 16 48\n"
                 "Movie.Three.2010__#01-00-00_01-01-00_label_B6-0-0.mp4 0 20 70 96\n")  # a published line has .mp4

# ShanghaiTech weakly supervised split: original test videos (4 digits) have masks, training ones (3) do not
SH_TRAIN = ["01_0014", "03_0035", "01_001", "02_002", "04_003", "05_004"]
SH_TEST = ["01_0015", "07_0005", "01_002", "06_003"]
SH_ABNORMAL = {"01_0014": (20, 60), "03_0035": (0, 30), "01_0015": (32, 64), "07_0005": (50, 100)}
SH_MASK_FRAMES = 100  # masks are as long as the original videos; the features below cover 6 x 16 = 96 frames


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _snippets(rng: np.random.Generator, abnormal: bool, t: int = 6, d: int = 16, crops: int | None = None
              ) -> np.ndarray:
    """Random snippet features; abnormal videos get a shifted middle so the tiny model has something to find."""
    shape = (t, d) if crops is None else (t, crops, d)
    x = rng.normal(size=shape).astype(np.float32)
    if abnormal:
        x[t // 3: 2 * t // 3] += 2.0
    return x


def ucf_layout(root: Path) -> Path:
    """UCF-Crime as downloaded: videos in the zips' folders, the split lists, the temporal annotation file."""
    from tests.media import write_video

    _write(root / "Anomaly_Detection_splits" / "Anomaly_Train.txt", "\n".join(UCF_TRAIN) + "\n")
    _write(root / "Anomaly_Detection_splits" / "Anomaly_Test.txt", "\n".join(UCF_TEST) + "\n")
    _write(root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt", UCF_ANNOTATION)
    for i, entry in enumerate(UCF_TRAIN + UCF_TEST):
        if entry.startswith("Training"):  # the zip's folder is not the one the list names
            path = root / "Training-Normal-Videos-Part-1" / Path(entry).name
        elif entry.startswith("Testing"):
            path = root / entry
        else:
            path = root / "Anomaly-Videos-Part-1" / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, num_frames=UCF_FRAMES, size=(64, 48), seed=i)
    return root


def xd_layout(root: Path) -> Path:
    """XD-Violence's published I3D features (i3d-features/RGB and RGBTest, 5 crops), UR-DMU's lists, the
    annotations file."""
    rng = np.random.default_rng(0)
    for folder, names, list_name in (("RGB", XD_TRAIN, "XD_Train.list"), ("RGBTest", XD_TEST, "XD_Test.list")):
        lines = []
        for name in names:
            x = _snippets(rng, "_label_A" not in name)
            for k in range(5):
                path = root / "i3d-features" / folder / f"{name}__{k}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, x + 0.01 * rng.normal(size=x.shape).astype(np.float32))
                lines.append(f"/home/authors/XD-Violence/i3d-features/{folder}/{name}__{k}.npy")
        _write(root / "list" / list_name, "\n".join(lines) + "\n")
    _write(root / "annotations.txt", XD_ANNOTATION)
    return root


def sh_layout(root: Path) -> Path:
    """ShanghaiTech's weakly supervised split: SH_Train.txt / SH_Test.txt, the test frame masks, RTFM's I3D
    features (T, 10 crops, D) as NAME_i3d.npy in ROOT/features."""
    rng = np.random.default_rng(1)
    _write(root / "SH_Train.txt", "\n".join(SH_TRAIN) + "\n")
    _write(root / "SH_Test.txt", "\n".join(SH_TEST) + "\n")
    for name, (start, end) in SH_ABNORMAL.items():
        mask = np.zeros(SH_MASK_FRAMES, np.uint8)
        mask[start:end] = 1
        path = root / "testing" / "test_frame_mask" / f"{name}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, mask)
    (root / "features").mkdir()
    for name in SH_TRAIN + SH_TEST:
        np.save(root / "features" / f"{name}_i3d.npy", _snippets(rng, name in SH_ABNORMAL, crops=10))
    return root
