"""User-facing errors: each carries a one-line message that the CLI prints without a traceback."""
from __future__ import annotations


class VadError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug (CLI exit code 2)."""


class VideoError(VadError):
    """A file could not be decoded as a video (names the file and the reason)."""


class FeatureError(VadError):
    """Features are missing, malformed or of the wrong shape."""


class WeightsError(VadError):
    """Backbone or model weights are missing or untrusted."""


class SynthError(VadError):
    """A synthetic benchmark cannot be made or read (bad config, missing or malformed files)."""


class GroundTruthError(VadError):
    """Ground truth is missing, malformed or does not match the videos it is used with."""


class MetricsError(VadError):
    """Scores and ground truth do not fit together (missing video, length mismatch, bad values)."""


class LayoutError(VadError):
    """A dataset folder lacks parts a benchmark recipe needs; ``missing`` names each part, one line each."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = list(missing)  # one line per missing part, what it is and where it was looked for
