"""Why a file cannot be decoded, in one line: decoders only say "error reading", so the file's own bytes are read
(text, a known container's signature, an MP4 without its index) to tell the user what is wrong with it."""
from __future__ import annotations

from pathlib import Path


def diagnose(p: Path, decoder_message: str) -> str:
    """A one-line reason why neither backend could open ``p`` (decoders only say "error reading")."""
    with open(p, "rb") as fh:
        head = fh.read(4096)
    msg = decoder_message.lower()
    if _looks_like_text(head):
        return "not a video (the file holds text)"
    if "video stream" in msg:
        return "no video stream (audio-only or data file)"
    container = _sniff_container(head)
    if container == "MP4/MOV" and not _file_contains(p, b"moov"):
        return "truncated MP4/MOV: no 'moov' index (the recording or download was cut off)"
    if container:
        return f"corrupt or truncated {container} file (no decodable video stream)"
    return "not a video (no known container signature, no decoder recognises the data)"


def _sniff_container(head: bytes) -> str:
    """The container a file's first bytes announce ("" when none we know)."""
    if head[4:8] == b"ftyp":
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:3] == b"FLV":
        return "FLV"
    if head[:4] == b"\x00\x00\x01\xba":
        return "MPEG stream"
    return ""


def _file_contains(p: Path, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Whether ``needle`` occurs anywhere in the file (read in chunks: videos can be large)."""
    tail = b""
    with open(p, "rb") as fh:
        while block := fh.read(chunk):
            if needle in tail + block:
                return True
            tail = block[-len(needle):]
    return False


def _looks_like_text(head: bytes) -> bool:
    """Whether the first bytes are UTF-8 text (a renamed text file, not a video)."""
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable / len(text) > 0.95


def first_line(exc: BaseException) -> str:
    """The first line of a decoder's message (they can run to many lines), at most 200 characters."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
