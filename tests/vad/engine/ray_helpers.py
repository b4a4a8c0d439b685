"""Imported by Ray workers in test_ray_engine.py: an extraction worker whose process dies once, mid-run."""
from __future__ import annotations

import os
from pathlib import Path

from vad.engine.ray_engine import ExtractWorker
from vad.features.extract import VideoOutcome

DIE_ON = "victim"  # the video whose first worker dies
MARKER = "died-once"  # written beside the outputs just before the process exits


class DiesOnceWorker(ExtractWorker):
    """Exits its process (no clean-up, as a lost node would) the first time it is handed :data:`DIE_ON`."""

    def process(self, video: Path, row: dict) -> VideoOutcome:
        marker = self.out / MARKER
        if video.stem == DIE_ON and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().process(video, row)
