"""Errors raised by graph4mm (no dependency on the rest of the repository)."""
from __future__ import annotations

__all__ = ["GraphDataError"]


class GraphDataError(ValueError):
    """Graph data on disk is missing, unreadable or inconsistent (the message names the file)."""
