"""Test media made on the fly: short synthetic videos, and Debian's opencv-doc clips when installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples/data")


def write_video(path: Path, num_frames: int = 40, size: tuple[int, int] = (96, 72), fps: float = 15.0,
                seed: int = 0) -> Path:
    """A short MP4 (mp4v) with a moving disc on a noisy background; deterministic for a seed."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    base = rng.integers(40, 90, size=(h, w, 3), dtype=np.uint8)
    for i in range(num_frames):
        frame = base.copy()
        x = int((i / max(1, num_frames - 1)) * (w - 1))
        cv2.circle(frame, (x, h // 2), max(3, h // 8), (0, 0, 230), -1)
        writer.write(frame)
    writer.release()
    return path


def opencv_doc_video(name: str) -> Path:
    """A real clip from Debian's opencv-doc, or skip the test with the reason."""
    path = OPENCV_DOC / name
    if not path.exists():
        pytest.skip(f"{path} absent: install Debian's opencv-doc for real-footage tests")
    return path
