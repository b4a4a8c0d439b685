"""Fixtures of the hostile suite: the corpus, built once per session (the CLI runner is in ``cli_runner.py``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.corpus import FFMPEG, build_videos

if FFMPEG is None:
    pytest.skip("ffmpeg is needed to build the hostile corpus", allow_module_level=True)


@pytest.fixture(scope="session")
def video_corpus(tmp_path_factory) -> tuple[Path, list]:
    """``(folder, cases)``: every hostile video in one folder."""
    root = tmp_path_factory.mktemp("hostile") / "videos"
    return root, build_videos(root)
