"""The README cannot drift: every Python block runs, and the first section's shell blocks run in a fresh directory."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(language: str, text: str | None = None) -> list[str]:
    """Code blocks of one language, in order."""
    return [body for lang, body in FENCE.findall(text if text is not None else README.read_text()) if lang == language]


def first_section() -> str:
    """README text up to its second level-2 heading (the part a newcomer reads first)."""
    text = README.read_text()
    heads = [m.start() for m in re.finditer(r"^## ", text, re.M)]
    return text[: heads[1]] if len(heads) > 1 else text


def test_readme_has_python_and_shell_blocks():
    assert blocks("python") and blocks("bash", first_section())


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs(index, tmp_path):
    code = blocks("python")[index]
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, f"README python block {index} failed:\n{code}\n{result.stderr[-2000:]}"


@pytest.mark.slow
def test_first_section_shell_blocks_run(tmp_path):
    """Each command as written, except: `make test` would recurse (skipped) and `make demo` runs its quick form
    (`vad demo --quick`, the same code path on fewer videos)."""
    vad = Path(sys.executable).with_name("vad")
    for body in blocks("bash", first_section()):
        for line in body.splitlines():
            command = line.split("#")[0].strip()
            if not command or command == "make test":
                continue
            if command == "make demo":
                command = "vad demo --quick --out vad-demo"
            command = re.sub(r"^vad ", f"{vad} ", command)
            result = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                                    env={**os.environ, "HF_HUB_OFFLINE": "1"})
            assert result.returncode == 0, f"README command failed: {line}\n{result.stderr[-2000:]}"
