"""A benchmark recipe's settings (``vad benchmark``), importable without torch: ``--help`` lists them without
loading the library."""
from __future__ import annotations

from dataclasses import dataclass, field

from vad.engine.config import CalibrationConfig, TrainConfig
from vad.features.config import ExtractConfig
from vad.models.config import ModelConfig


@dataclass(frozen=True)
class BenchmarkConfig:
    """Where a benchmark's parts are, which features it uses, and the model and training it runs."""

    # auto (the videos when every listed video has a file, else published features) | videos | features
    source: str = "auto"
    # folder of published .npy features (default ROOT/features): per-video (T, crops, D) or per-crop NAME__k.npy
    features: str | None = None
    train_list: str | None = None  # train split list (default: the dataset's standard file, found under the root)
    test_list: str | None = None  # test split list (default: the dataset's standard file, found under the root)
    # test ground truth: the annotation file, or ShanghaiTech's mask folder (default: found under the root)
    ground_truth: str | None = None
    val_fraction: float = 0.15  # share of each class of the train list moved to validation for model selection
    extract: ExtractConfig = field(default_factory=ExtractConfig)  # feature extraction, when starting from videos
    model: ModelConfig = field(default_factory=ModelConfig)  # the model trained
    train: TrainConfig = field(default_factory=TrainConfig)  # how it is trained
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)  # thresholds stored with the model

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"BenchmarkConfig.val_fraction must be in (0, 1), got {self.val_fraction}")
