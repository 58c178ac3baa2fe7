"""Writing ``metrics.jsonl`` (one JSON object per logging step), and TensorBoard when it is installed.

:func:`contrastive_core.run_directory.read_metrics` reads the records back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..run_directory.atomic import write_text_atomic
from ..run_directory.names import TENSORBOARD_DIR


class MetricsLog:
    """Appends metrics lines to ``path``; on resume, lines past the resumed step are dropped first.

    Only the main process should create one. TensorBoard event files go to ``<dir>/tensorboard`` when
    the ``tensorboard`` package is importable.
    """

    def __init__(self, path: Path, resume_step: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_after(resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        self._tensorboard = _tensorboard_writer(self.path.parent / TENSORBOARD_DIR)

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
        if self._tensorboard is not None:
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, int | float):
                    self._tensorboard.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _tensorboard_writer(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(directory))
