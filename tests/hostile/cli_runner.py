"""What the hostile tests check runs with: a CLI runner that captures everything written to stdout and stderr,
Python's and native code's alike, and a finder of leftover temp files."""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CliRun:
    """One ``vad`` invocation: exit code and everything it printed."""

    code: int
    out: str
    err: str  # Python's stderr plus anything native code wrote to descriptor 2

    def lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [ln for ln in self.err.splitlines() if ln.strip()]

    def assert_clean(self) -> None:
        """No traceback, and every stderr line is one of ours (decoder noise captured)."""
        assert "Traceback" not in self.err and "Traceback" not in self.out, self.err
        foreign = [ln for ln in self.lines() if not ln.startswith("vad: ")]
        assert not foreign, f"stderr lines that are not vad's own one-line messages: {foreign[:5]}"


def run_cli(*args: str) -> CliRun:
    """Run ``vad ARGS`` in this process; capture Python's streams and file descriptors 1 and 2."""
    from apps.cli import main

    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryFile() as native:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(native.fileno(), 1)
        os.dup2(native.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["-q", *args])
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        native.seek(0)
        leaked = native.read().decode("utf-8", "backslashreplace")
    return CliRun(code, out.getvalue(), err.getvalue() + leaked)


def no_partial_files(root: Path) -> list[Path]:
    """Temp files left under ``root`` (there must be none)."""
    return [p for p in root.rglob("*") if ".part" in p.name and p.name.startswith(".")]  # .NAME...part[.EXT]
