"""``RunReport``: the outcome of a batch job over many videos (shared by ``vad extract`` and ``vad score``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunReport:
    """What a batch run did with each input; bad inputs are recorded and the run goes on."""

    out_dir: Path
    written: list[str] = field(default_factory=list)  # names processed in this run
    skipped: list[str] = field(default_factory=list)  # names already done (resume)
    failed: dict[str, str] = field(default_factory=dict)  # input path → one-line reason

    @property
    def exit_code(self) -> int:
        """0 if every input succeeded, 1 if some failed (the CLI's contract)."""
        return 1 if self.failed else 0
