"""A small benchmark, its features and a model trained on them, made once per session (a few seconds)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_inputs(tmp_path_factory, tiny_backbone_config) -> tuple[Path, Path]:
    """``(benchmark dir, feature dir)``: 12 short synthetic videos and their features (tiny random backbone)."""
    from vad.features.extract import ExtractConfig, extract_videos
    from vad.features.video import SnippetConfig
    from vad.synth.benchmark import SynthConfig
    from vad.synth.generate import make_benchmark

    root = tmp_path_factory.mktemp("inputs")
    bench = make_benchmark(root / "bench", SynthConfig(videos=12, seed=3, min_frames=48, max_frames=64),
                           progress=False)
    extract_videos([bench.root / "videos"], root / "feats",
                   ExtractConfig(backbone=tiny_backbone_config, snippets=SnippetConfig(8, 1)), progress=False)
    return bench.root, root / "feats"


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, trained_inputs) -> Path:
    """Model directory of a tiny vadgraph model trained on :func:`trained_inputs`."""
    from vad.engine.train import TrainConfig, train_from_paths
    from vad.models.config import ModelConfig

    bench, feats = trained_inputs
    out = tmp_path_factory.mktemp("trained") / "model"
    train_from_paths(feats, out, bench, model_config=ModelConfig(hidden=32),
                     config=TrainConfig(epochs=2, batch_size=4, num_snippets=8, device="cpu"), progress=False)
    return out
