"""Decoder noise kept off the terminal: native libraries (FFmpeg inside decord and OpenCV, decord's own logger,
OpenCV's AVI parser) write warnings straight to file descriptor 2, ahead of and mixed into our one-line messages.

:func:`native_stderr_captured` points descriptor 2 at a temporary file for the duration of a command, while
Python's own ``sys.stderr`` (our messages, progress bars, logging) keeps writing to the real terminal. The captured
text is handed back so ``-v`` can show it.
"""
from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    """What native code wrote to descriptor 2 while captured (read it after the block)."""

    def __init__(self) -> None:
        self.text = ""


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[Captured]:
    """Capture descriptor 2 (native libraries) for the block; ``sys.stderr`` keeps reaching the terminal."""
    result = Captured()
    try:
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        python_on_fd2 = False  # a test harness or a wrapper already holds sys.stderr: only fd 2 needs moving
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all (a daemon): nothing to capture
        yield result
        return
    capture = tempfile.TemporaryFile()
    old_stderr = sys.stderr
    os.dup2(capture.fileno(), 2)
    if python_on_fd2:
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding=old_stderr.encoding,
                                      errors="backslashreplace", line_buffering=True, write_through=True)
    crash_reports = faulthandler.is_enabled()
    if crash_reports:  # a native crash is still reported on the terminal, not into the capture
        faulthandler.enable(file=saved)
    try:
        yield result
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if python_on_fd2:
            sys.stderr = old_stderr
        os.dup2(saved, 2)
        if crash_reports:
            faulthandler.enable(file=2)
        os.close(saved)
        capture.seek(0)
        result.text = capture.read().decode("utf-8", "backslashreplace")
        capture.close()
