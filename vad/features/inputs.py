"""Which files a command works on: files, directories and globs expanded, and why a path is not a readable file.

Nothing the user names is dropped on the way: a broken path stays in the list and is reported by name.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".ts")


def path_problem(p: Path) -> str | None:
    """Why ``p`` cannot be read as a video file (dangling link, loop, directory, pipe, empty...), or None."""
    try:
        st = p.stat()
    except FileNotFoundError:
        if p.is_symlink():
            return f"dangling symlink (its target {os.readlink(p)} does not exist)"
        return "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop (following the link leads back to itself)"
        return f"cannot read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a video file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, socket or device)"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(p, os.R_OK):
        return "permission denied"
    return None


def find_videos(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, directories (recursively, video extensions only) and globs into a sorted, unique list.

    Nothing named is dropped: a path that is missing, a dangling link, a link loop or a directory without videos
    stays in the list (and :func:`open_video` says what is wrong with it), as does any entry with a video
    extension inside a directory that is not a readable file (a directory called ``x.mp4``, a broken link).
    """
    import glob

    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(_videos_in(p) or [p])
        elif p.exists() or p.is_symlink() or not glob.has_magic(str(item)):
            found.append(p)  # a file, or a broken path reported later by name
        else:
            matches = sorted(glob.glob(str(item), recursive=True))
            if not matches:
                found.append(p)  # reported later as "file not found", not silently dropped
            for m in map(Path, matches):
                found.extend((_videos_in(m) or [m]) if m.is_dir() else [m])
    seen: set[Path] = set()
    unique = []
    for p in found:
        try:
            key = p.resolve()
        except (OSError, RuntimeError):  # a symlink loop cannot be resolved
            key = p.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _videos_in(folder: Path) -> list[Path]:
    """Every entry with a video extension under ``folder`` (recursively), whatever its type, sorted."""
    return sorted(q for q in folder.rglob("*") if q.suffix.lower() in VIDEO_EXTENSIONS
                  and not (q.is_dir() and _videos_in(q)))
