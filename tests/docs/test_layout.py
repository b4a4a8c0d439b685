"""The layout rules that no linter checks: one job per module (none over 400 lines), and the model stage loads
without the video, CLIP or UI stack."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vad", "fusion", "graph4mm", "apps", "bench", "tests")
MAX_LINES = 400


def modules() -> list[Path]:
    """Every Python module of the shipped packages, the benches and the tests."""
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


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+|\s--$")  # a flag, or " --" that an f-string completes
BUILDS_COMMAND_LINES = {Path("vad/engine/recipes/commands.py")}  # writes `vad ...` commands for the user to rerun


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module, its classes and functions (documentation may name flags)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_library_messages_name_settings_not_flags():
    """The library names a setting by its config field in backquotes; ``apps/cli.py`` shows it as the verb's flag."""
    offenders = []
    for package in ("vad", "fusion", "graph4mm"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT) in BUILDS_COMMAND_LINES:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docs = _docstrings(tree)
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:80]!r}" for node in ast.walk(tree)
                          if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                          and FLAG.search(node.value)]
    assert not offenders, "library strings naming CLI flags:\n" + "\n".join(offenders)
