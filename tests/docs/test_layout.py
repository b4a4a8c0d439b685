"""The layout rules that no linter checks: one job per module (none over 400 lines), and the model stage loads
without the video, CLIP or UI stack."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vad", "fusion", "graph4mm", "apps", "bench")
MAX_LINES = 400


def modules() -> list[Path]:
    """Every Python module of the shipped packages and the benches."""
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_packages_have_modules():
    assert len(modules()) > 50  # a wrong ROOT would make the size rule pass vacuously


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_400_lines(path):
    count = len(path.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_LINES, f"{path.relative_to(ROOT)} has {count} lines: split it by job"


def test_models_import_without_decoders_clip_or_ui():
    heavy = ("decord", "open_clip", "gradio", "cv2", "ray")
    code = ("import sys, vad.models, vad.models.checkpoint\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"import vad.models pulled in {result.stdout.strip()}"
