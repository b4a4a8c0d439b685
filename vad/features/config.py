"""What decides the features: the backbone, the motion level and extraction settings, importable without torch
or OpenCV (``vad extract --help`` lists their fields without loading either)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vad.features.video import SnippetConfig

METHODS = ("dis", "dis_fast", "farneback")  # optical-flow methods of the motion level


@dataclass(frozen=True)
class BackboneConfig:
    """Which CLIP model to run and where."""

    name: str = "ViT-B-16"  # open_clip model name (ViT-B-16 is what VadCLIP's published features use)
    pretrained: str = "openai"  # open_clip tag, a local checkpoint path, or "random"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16/fp16 autocast on CUDA, fp32 on CPU) | fp32 | fp16 | bf16
    patch_grid: int = 2  # patch tokens are average-pooled to a patch_grid x patch_grid grid (P = grid**2)


@dataclass(frozen=True)
class MotionConfig:
    """How a snippet's motion is summarised; :func:`vad.features.motion.motion_dim` gives the vector length M."""

    method: str = "dis"  # dis (DIS ultrafast) | dis_fast (DIS fast) | farneback
    size: int = 64  # flow on grayscale frames resized so the short side is this many px (small ones upscaled)
    grid: int = 2  # grid x grid cells of mean flow (dx, dy each)
    bins: int = 8  # speed-weighted orientation histogram bins
    moving: float = 0.1  # speed (px per source frame, reduced size) above which a pixel counts as moving
    eps: float = 1e-3  # log(x + eps): "no motion" stands apart from "little motion"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if not 1 <= self.grid <= self.size // 4:
            raise ValueError(f"grid must be in [1, size // 4], got {self.grid}")
        if self.bins < 1 or self.eps <= 0 or self.moving < 0:
            raise ValueError("bins must be >= 1, eps > 0 and moving >= 0")


DEFAULT_PROMPTS: tuple[str, ...] = (
    "normal", "abuse", "arrest", "arson", "assault", "burglary", "explosion", "fighting", "road accident",
    "robbery", "shooting", "shoplifting", "stealing", "vandalism",
)  # "normal" + the 13 UCF-Crime classes; the first prompt is always the normal one
PROMPT_TEMPLATE = "a surveillance video frame of {}."


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that decides what features come out of a video."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # which CLIP, where, what precision
    snippets: SnippetConfig = field(default_factory=SnippetConfig)  # S and F
    batch_snippets: int = 32  # snippets decoded and encoded per batch (memory is bounded by one batch)
    prefetch: int = 2  # decoded batches queued ahead of the encoder (0: decode in the encoder's thread)
    decode_workers: int = 0  # threads decoding and computing flow; 0 = auto (CUDA: torch threads - 2, <= 8)
    prompts: tuple[str, ...] = DEFAULT_PROMPTS  # text prompts; the first is the normal class
    template: str = PROMPT_TEMPLATE  # how a prompt becomes a sentence for the text encoder
    motion: bool = True  # also compute the optical-flow motion level (N, M) from the decoded frames
    motion_config: MotionConfig = field(default_factory=MotionConfig)  # flow method, resolution, summary
