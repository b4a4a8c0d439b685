"""Writing outputs: atomic files (whole or not at all: temp file beside the target, then rename) and run reports.

Also the small text helpers every stage shares so that nothing a user sees is more than one line, no JSON holds
NaN, and text files in odd encodings fail with a message naming the line.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vad.errors import VadError

PART_SUFFIX = ".part"  # every temp file atomic_path makes ends in it
# .NAME.PID.RANDOM[.SUFFIX].part, or .NAME.PID.RANDOM.part.EXT for writers that pick a format by the last suffix;
# RANDOM is mkstemp's 8 characters, which pins the pid even when NAME has numbers or RANDOM is all digits
_PART_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.[a-z0-9_]{8}(?:\.[^.]+)*\.part(?:\.[A-Za-z0-9]+)?$")


def file_mode() -> int:
    """The mode a plain ``open`` gives a new file under this process's umask (0o666 & ~umask)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temp name keeps ``suffix`` (e.g. ``.npz``, ``.png``) so writers that pick a format by extension work, and
    holds this process's id so :func:`clean_stale_parts` can tell a dead run's leftovers from a live one's. The
    file gets the mode a plain ``open`` would give (mkstemp makes it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=(suffix or path.suffix) + PART_SUFFIX,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


PID_MAX = 2**31 - 1  # pid_t is 32-bit: a larger number in a temp name is no pid (os.kill would overflow)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return pid != 0


def clean_stale_parts(folder: str | os.PathLike, names: str = f".*{PART_SUFFIX}", require_pid: bool = False
                      ) -> list[Path]:
    """Remove temp files that an interrupted run left in ``folder`` (writers that died); returns them.

    ``names`` is the glob of the temp files to look at: by default every ``.*.part`` file, the names
    :func:`atomic_path` gives, in an output folder of ours. A name that carries a writer's pid is removed only when
    that process is gone; with ``require_pid`` (a folder the user may share with their own files, e.g. the current
    directory) a name without one is left alone too.
    """
    removed = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for p in root.glob(names):
        m = _PART_RE.match(p.name)
        pid = int(m.group("pid")) if m else None
        if pid is None and require_pid:
            continue  # not a name we give: not ours to delete
        if pid is not None and (pid > PID_MAX or pid == os.getpid() or _pid_alive(pid)):
            continue  # a live writer's (or ours, in flight), or a number that is no pid: left alone
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
    return removed


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8; undecodable file-name bytes are kept as ``\\xNN``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically; NaN and infinities become ``null`` (valid JSON)."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    write_text_atomic(path, text + "\n")


def save_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save arrays to an ``.npz`` atomically (numpy would otherwise leave a half-written file on a crash)."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save one array to a ``.npy`` atomically (no pickles: object arrays are refused by numpy here)."""
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (Python or numpy, at any depth) replaced by None."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return printable(str(obj))
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def printable(text: str) -> str:
    """``text`` safe to print or store as UTF-8: undecodable file-name bytes become ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def one_line(text: str, limit: int = 400) -> str:
    """``text`` as a single printable line (line breaks shown as ``\\n``), at most ``limit`` characters."""
    flat = printable(str(text)).strip().replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failure_reason(item: str | os.PathLike, exc: BaseException) -> str:
    """One line saying why ``item`` failed: the error's own message (naming ``item`` once), with the exception's
    type for errors that are not :class:`VadError` (decoder and OS errors)."""
    shown = one_line(str(item))
    message = str(exc).replace(str(item), shown).strip()  # a line break in the file's name is not the message's
    text = message.splitlines()[0] if message else ""
    if not isinstance(exc, VadError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return one_line(text if shown in text else f"{shown}: {text}")


def read_json_object(path: str | os.PathLike, what: str, error: type[VadError] = VadError) -> dict:
    """A JSON file that must hold an object; ``error`` naming the file when it is unreadable, not JSON or not an
    object."""
    try:
        value = json.loads(read_text(path, what, error))
    except json.JSONDecodeError as exc:
        raise error(f"{path}: corrupt {what}, not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise error(f"{path}: the {what} must be a JSON object, got a {type(value).__name__}")
    return value


def read_text(path: str | os.PathLike, what: str = "file", error: type[VadError] = VadError) -> str:
    """A text file's content (UTF-8, a BOM dropped); ``error`` naming the file and line when it is not text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not a UTF-8 text {what} (byte 0x{data[exc.start]:02x} at offset "
                    f"{exc.start})") from None


def read_csv_table(path: str | os.PathLike, required: Sequence[str], what: str = "CSV file",
                   error: type[VadError] = VadError) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """``(header, [(line number, {column: stripped value})])`` of a CSV file with a header row.

    UTF-8 with or without a BOM; the delimiter (``,`` ``;`` tab ``|``) is the one that makes the header hold the
    ``required`` columns. Blank rows are skipped; a row with fewer fields than the header, an undecodable byte or
    a missing column is ``error`` naming the file and line.
    """
    text = read_text(path, what, error)
    delimiter = _delimiter(text, required)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise error(f"{path}: needs columns {' and '.join(map(repr, required))}; missing "
                        f"{', '.join(missing)} (has {one_line(', '.join(header), 120) or 'none'})")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header) or any(cell.strip() for cell in row[len(header):]):
                raise error(f"{path}:{reader.line_num}: {len(row)} field(s), the header has {len(header)} "
                            f"({delimiter.join(header)})")
            rows.append((reader.line_num, {k: v.strip() for k, v in zip(header, row)}))
    except csv.Error as exc:
        raise error(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    return header, rows


def _delimiter(text: str, required: Sequence[str]) -> str:
    """The delimiter that makes the first non-blank line hold the ``required`` column names (default ``,``)."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    candidates = [",", ";", "\t", "|"]
    try:
        candidates.insert(0, csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter)
    except csv.Error:
        pass
    for delim in candidates:
        try:
            cells = {c.strip() for c in next(csv.reader([first], delimiter=delim), [])}
        except csv.Error:
            continue
        if set(required) <= cells:
            return delim
    return ","


def fingerprint(path: str | os.PathLike, chunk: int = 1 << 20, whole_below: int = 64 << 20) -> str:
    """A short content digest of a file: the whole file up to ``whole_below`` bytes, else its size plus 16
    spread samples of ``chunk`` bytes (same content → same digest; a re-encoded or replaced file differs)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(f"{size}|".encode(), digest_size=10)
    with open(path, "rb") as fh:
        if size <= whole_below:
            while block := fh.read(chunk):
                digest.update(block)
        else:
            for i in range(16):
                fh.seek((size - chunk) * i // 15)
                digest.update(fh.read(chunk))
    return digest.hexdigest()


@dataclass
class RunReport:
    """What a batch run did with each input; bad inputs are recorded and the run goes on."""

    out_dir: Path
    written: list[str] = field(default_factory=list)  # names processed in this run
    skipped: list[str] = field(default_factory=list)  # names already done (resume)
    failed: dict[str, str] = field(default_factory=dict)  # input path → one-line reason
    notes: list[str] = field(default_factory=list)  # what the run decided on its own (e.g. why it re-did a video)

    @property
    def exit_code(self) -> int:
        """0 if every input succeeded, 1 if some failed (the CLI's contract)."""
        return 1 if self.failed else 0


def unique_stems(videos: Iterable[Path], failed: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """``(stem, path)`` of each video whose file stem (its output name) no earlier video took; a clash is
    recorded in ``failed`` naming both files, and the batch goes on."""
    claimed: dict[str, Path] = {}
    for video in videos:
        name = video.stem
        if name in claimed:
            failed[str(video)] = one_line(f"{video}: name clash with {claimed[name]} (same file stem; "
                                          f"rename one of them)")
            continue
        claimed[name] = video
        yield name, video
