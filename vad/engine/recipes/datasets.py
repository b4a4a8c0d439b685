"""What differs between the three benchmarks: the files the community distributes, how a video's label is known,
which reader turns the test ground truth into frame labels, and the headline metric.

The formats (checked against the files the authors and the peer projects publish; docs/design.md §8, benchmark layouts):

- **UCF-Crime** (Sultani et al., CVPR 2018): ``Anomaly_Train.txt`` / ``Anomaly_Test.txt`` from the
  ``Anomaly_Detection_splits`` folder list ``Class/Name.mp4`` per line; the test ground truth is
  ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` (``Name.mp4  Class  s1  e1  s2  e2``, ``-1`` for none).
  Labels from the name (``Normal_Videos...`` normal). Metric: frame ROC-AUC.
- **XD-Violence** (Wu et al., ECCV 2020): list files of the split's videos or feature crops (UR-DMU's
  ``XD_Train.list`` / ``XD_Test.list``, XDVioDet's ``rgb.list`` / ``rgb_test.list``); labels from the name's
  ``_label_`` code (``A`` normal); ``annotations.txt`` gives ``name s1 e1 s2 e2 ...`` for the violent test videos.
  Metric: frame average precision.
- **ShanghaiTech**, weakly supervised split (Zhong et al., CVPR 2019): ``SH_Train.txt`` / ``SH_Test.txt`` (or
  RTFM's ``shanghai-i3d-train-10crop.list`` / ``shanghai-i3d-test-10crop.list``); the original test set's frame
  masks ``test_frame_mask/NAME.npy`` mark the abnormal frames, and a video is abnormal when its mask has any
  (the split moves part of the original test set, all of it abnormal, into training). Metric: frame ROC-AUC.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vad.data.formats import infer_label_class
from vad.data.groundtruth import (
    GroundTruth,
    load_mask,
    parse_ucf_annotations,
    parse_xd_annotations,
    read_frame_masks,
    read_ucf_annotations,
    read_xd_annotations,
)
from vad.names import NORMAL_CLASS

GT_PART = "ground_truth"
SPLIT_PARTS = {"train": "train_list", "test": "test_list"}  # split -> the part holding its list


@dataclass(frozen=True)
class Part:
    """One file (or folder) of a dataset layout."""

    key: str  # train_list | test_list | ground_truth (also the BenchmarkConfig field that overrides it)
    what: str  # what it is, for messages
    names: tuple[str, ...]  # file or folder names searched under the root, in order of preference
    source: str  # where the community gets it
    folder: bool = False  # a folder (ShanghaiTech's masks) rather than a file


@dataclass(frozen=True)
class Recipe:
    """A benchmark: its parts, how labels and ground truth are read, and its headline metric."""

    name: str  # the `vad benchmark` argument
    title: str  # the dataset's usual name
    metric: str  # "auc" or "ap": the EvalReport field reported as the headline
    metric_name: str  # how papers call it
    parts: tuple[Part, ...]  # train list, test list, ground truth
    label: Callable[[str, Path], tuple[int, str]]  # (video name, ground-truth path) -> (label, class); -1 unknown
    ground_truth: Callable[[Path, Mapping[str, int], Sequence[str]], GroundTruth]  # (path, frame counts, names)
    annotated: Callable[[Path], Collection[str]]  # names the ground truth has an entry for
    every_test_video_annotated: bool  # True: normal test videos need an entry too; False: abnormal ones only
    labels_from_ground_truth: bool = False  # the label is read from the ground truth, not from the name
    video_hint: str = ""  # how to get video files when the distribution ships something else

    def part(self, key: str) -> Part:
        """The part named ``key``."""
        return next(p for p in self.parts if p.key == key)


def _label_from_name(name: str, _gt: Path) -> tuple[int, str]:
    """UCF-Crime and XD-Violence: the name says it (``Normal_Videos...``, ``..._label_A``)."""
    return infer_label_class(name)


def _label_from_mask(name: str, masks: Path) -> tuple[int, str]:
    """ShanghaiTech: abnormal when the video's frame mask marks any frame (no mask: normal)."""
    mask = load_mask(masks / f"{name}.npy")
    return (1, "Abnormal") if mask is not None and mask.any() else (0, NORMAL_CLASS)


def _mask_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.npy")}


UCF_CRIME = Recipe(
    "ucf-crime", "UCF-Crime", "auc", "frame AUC",
    (Part("train_list", "train split list", ("Anomaly_Train.txt",),
          "UCF_Crimes-Train-Test-Split.zip, folder Anomaly_Detection_splits"),
     Part("test_list", "test split list", ("Anomaly_Test.txt",),
          "UCF_Crimes-Train-Test-Split.zip, folder Anomaly_Detection_splits"),
     Part(GT_PART, "temporal annotation of the test videos",
          ("Temporal_Anomaly_Annotation_for_Testing_Videos.txt", "Temporal_Anomaly_Annotation.txt"),
          "the UCF-Crime download page (also in the authors' AnomalyDetectionCVPR2018 repository)")),
    _label_from_name, read_ucf_annotations, parse_ucf_annotations, every_test_video_annotated=True)

XD_VIOLENCE = Recipe(
    "xd-violence", "XD-Violence", "ap", "frame AP",
    (Part("train_list", "train split list", ("XD_Train.list", "rgb.list"),
          "UR-DMU's list/XD_Train.list or XDVioDet's list/rgb.list"),
     Part("test_list", "test split list", ("XD_Test.list", "rgb_test.list", "rgbtest.list"),
          "UR-DMU's list/XD_Test.list or XDVioDet's list/rgb_test.list"),
     Part(GT_PART, "frame annotations of the violent test videos", ("annotations.txt", "XD_Annotation.txt"),
          "the XD-Violence project page (test annotations)")),
    _label_from_name, read_xd_annotations, parse_xd_annotations, every_test_video_annotated=False)

SHANGHAITECH = Recipe(
    "shanghaitech", "ShanghaiTech (weakly supervised split)", "auc", "frame AUC",
    (Part("train_list", "train split list (Zhong et al. 2019)",
          ("SH_Train.txt", "shanghai-i3d-train-10crop.list"),
          "the weakly supervised split of Zhong et al. (CVPR 2019), or RTFM's list/shanghai-i3d-train-10crop.list"),
     Part("test_list", "test split list (Zhong et al. 2019)", ("SH_Test.txt", "shanghai-i3d-test-10crop.list"),
          "the weakly supervised split of Zhong et al. (CVPR 2019), or RTFM's list/shanghai-i3d-test-10crop.list"),
     Part(GT_PART, "frame masks of the abnormal videos", ("test_frame_mask",),
          "the ShanghaiTech Campus download (testing/test_frame_mask)", folder=True)),
    _label_from_mask, read_frame_masks, _mask_names, every_test_video_annotated=False,
    labels_from_ground_truth=True,
    video_hint="ShanghaiTech's testing set ships as frame folders: make each a video first, e.g. "
               "ffmpeg -framerate 24 -i testing/frames/01_0014/%03d.jpg 01_0014.avi")

RECIPES: dict[str, Recipe] = {r.name: r for r in (UCF_CRIME, XD_VIOLENCE, SHANGHAITECH)}
