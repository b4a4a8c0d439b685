"""The settings of the engine's runs (scoring, training, calibration, one-class fitting), importable without torch:
``vad VERB --help`` lists their fields without loading the library."""
from __future__ import annotations

from dataclasses import dataclass, field

from vad.engine.segments import SegmentConfig
from vad.models.config import GraphTermsConfig, MemoryConfig
from vad.names import FEATURE_LEVELS


@dataclass(frozen=True)
class ScoreConfig:
    """Settings of a scoring run."""

    segments: SegmentConfig = field(default_factory=SegmentConfig)  # threshold, min gap, min length
    device: str = "auto"  # auto | cpu | cuda | cuda:N (backbone and model)
    batch_snippets: int = 32  # snippets decoded and encoded per batch (bounds memory)
    backbone: str | None = None  # override the checkpoint's open_clip model name (rarely needed)
    pretrained: str | None = None  # override the checkpoint's backbone weights (tag or file)
    precision: str = "auto"  # backbone precision: auto | fp32 | fp16 | bf16
    zero_shot: bool = False  # no trained model: score by CLIP prompt similarity (needs real CLIP weights)
    prompts: str | None = None  # zero-shot prompt file, one per line, the normal class first (default: UCF-Crime)
    runtime: str = "torch"  # torch | onnx (onnxruntime on CPU, MODEL/model.onnx; exported first if missing)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 40  # upper bound; early stopping usually ends sooner
    batch_size: int = 16  # videos per step: half normal, half abnormal
    num_snippets: int = 64  # longer training videos are average-pooled to this many snippets, shorter padded
    lr: float = 1e-3  # AdamW learning rate
    fusion_lr_scale: float = 20.0  # LEGO's A matrices learn this much faster (54 numbers shared by every node)
    weight_decay: float = 1e-3  # AdamW weight decay (not applied to A)
    smooth_weight: float = 8e-4  # RTFM temporal smoothness on abnormal videos
    sparsity_weight: float = 8e-4  # RTFM sparsity on abnormal videos
    degree_weight: float = 0.0  # LEGO paper's degree-variance regulariser on G (0 = off)
    schedule: str = "cosine"  # learning rate over the epochs: cosine (decays to 0 at `epochs`) | constant
    ema_decay: float = 0.95  # weights are averaged (EMA per step); validation and the checkpoint use the average
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0  # everything random (init, sampling, dropout) derives from it
    device: str = "auto"  # auto | cpu | cuda
    grad_clip: float = 5.0  # max gradient norm


@dataclass(frozen=True)
class CalibrationConfig:
    """How the stored operating thresholds are chosen on the validation videos."""

    target_far: float = 0.01  # share of normal validation frames allowed at or above the stored threshold

    def __post_init__(self) -> None:
        if not 0.0 < self.target_far < 1.0:
            raise ValueError(f"CalibrationConfig.target_far must be in (0, 1), got {self.target_far}")


@dataclass(frozen=True)
class FitNormalConfig:
    """How a one-class model is fitted on normal videos."""

    memory: MemoryConfig = field(default_factory=MemoryConfig)  # size, sampling pool, reduction, k
    graph_terms: GraphTermsConfig = field(default_factory=GraphTermsConfig)  # within-video graph terms
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)  # stored thresholds
    levels: tuple[str, ...] = FEATURE_LEVELS  # levels remembered (those the features lack are left out)
    center: bool = True  # subtract each video's median first: the memory holds deviations from a video's usual state
    val_fraction: float = 0.15  # share of the videos held out to fit the score scale and the thresholds
    seed: int = 0  # which videos are held out
    device: str = "auto"  # auto | cpu | cuda: where validation videos are scored

    def __post_init__(self) -> None:
        unknown = [lvl for lvl in self.levels if lvl not in FEATURE_LEVELS]
        if unknown or not self.levels:
            raise ValueError(f"FitNormalConfig.levels: choose from {FEATURE_LEVELS}, got {self.levels}")
        object.__setattr__(self, "levels", tuple(self.levels))


ENGINES = ("local", "ray")
INSTALL_HINT = "pip install 'vadgraph[ray]'"


@dataclass(frozen=True)
class EngineConfig:
    """Where the per-video work of ``vad extract`` / ``vad score`` runs: this process (local) or the actors of a Ray
    cluster (ray, :mod:`vad.engine.ray_engine`)."""

    name: str = "local"  # local | ray (needs `pip install 'vadgraph[ray]'`)
    address: str | None = None  # ray: auto (a running cluster) | ray://HOST:PORT | none: a Ray runtime on this machine
    workers: int = 2  # ray: actors, each holding one loaded backbone and doing whole videos
    gpus_per_worker: float = 0.0  # ray: GPUs per actor (CUDA clusters; 0 on CPU)
    cpus_per_worker: float = 1.0  # ray: CPUs per actor (also its torch and OpenCV threads)
    retries: int = 3  # ray: how often a video is retried after its worker died, before it is reported failed

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.name!r}")
        if self.workers < 1 or self.gpus_per_worker < 0 or self.cpus_per_worker <= 0 or self.retries < 0:
            raise ValueError("engine needs workers >= 1, gpus_per_worker >= 0, cpus_per_worker > 0, retries >= 0")
