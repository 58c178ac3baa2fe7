"""Writing ``metrics.jsonl`` (one JSON object per logging step), and passing each record on to the run's
experiment trackers (:mod:`.experiment_trackers`).

:func:`contrastive_core.run_directory.read_metrics` reads the records back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..run_directory.atomic import write_text_atomic


class MetricsLog:
    """Appends metrics lines to ``path``; on resume, lines past the resumed step are dropped first.

    Only the main process should create one. ``also``: called with every record's metrics (without
    ``step``) and its step, e.g. a stage's ``context.log_metrics`` (the run's experiment trackers).
    """

    def __init__(
        self, path: Path, resume_step: int = 0, also: Callable[[dict[str, Any], int], None] | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_after(resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        self._also = also

    def _truncate_after(self, step: int) -> None:
        """Keep only lines up to ``step``: those after it are re-logged by the resumed run."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # a line cut short by a crash, or damaged otherwise
                continue
            if not isinstance(record, dict):  # not a record this log wrote
                continue
            if record.get("step", 0) <= step:
                kept.append(line)
        # Atomic: a crash while resuming leaves either the old file or the truncated one.
        write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._also is not None:
            self._also({key: value for key, value in record.items() if key != "step"}, record["step"])

    def close(self) -> None:
        self._file.close()
