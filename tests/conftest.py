"""Shared fixtures: a tiny random open_clip checkpoint on disk and short synthetic videos."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.media import write_video

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the network

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random-initialised tiny open_clip model saved to .safetensors (stands in for real weights)."""
    from vad.features.backbone import TINY_MODEL, save_random_checkpoint

    return save_random_checkpoint(TINY_MODEL, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", seed=0)


@pytest.fixture(scope="session")
def tiny_backbone_config(tiny_checkpoint):
    """BackboneConfig for the tiny model, loaded through the real ``--pretrained PATH`` path."""
    from vad.features.backbone import TINY_MODEL, BackboneConfig

    return BackboneConfig(name=TINY_MODEL, pretrained=str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def tiny_backbone(tiny_backbone_config):
    from vad.features.backbone import load_backbone

    return load_backbone(tiny_backbone_config)


@pytest.fixture
def video_file(tmp_path) -> Path:
    return write_video(tmp_path / "clip.mp4")


@pytest.fixture
def bad_videos(tmp_path) -> dict[str, Path]:
    """Real bad files, one per failure mode the decoder must name."""
    good = write_video(tmp_path / "source.mp4", num_frames=30)
    data = good.read_bytes()
    d = tmp_path / "bad"
    d.mkdir()
    files = {
        "random": d / "random.mp4",
        "empty": d / "empty.mp4",
        "truncated": d / "truncated.mp4",
        "text": d / "notes.mp4",
    }
    files["random"].write_bytes(np.random.default_rng(1).bytes(4096))
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("this is a text file, not a video\n" * 20)
    if shutil.which("ffmpeg"):
        audio = d / "audio_only.m4a"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                        str(audio)], check=True)
        files["audio"] = audio.rename(d / "audio_only.mp4")
    good.unlink()
    return files


# A small benchmark, its features and a model trained on them, made once per session (a few seconds); used by
# tests/apps and tests/hostile.

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


@pytest.fixture(scope="session")
def free_port():
    """A function giving a free TCP port on 127.0.0.1 (for test servers)."""
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick
