"""Turning Ctrl-C and SIGTERM into a request the training loop honours at a step boundary."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Catches SIGINT and SIGTERM while active; ``requested`` names the signal once one arrived.

    The training loop checks ``requested`` between steps, saves a checkpoint and stops cleanly. A second
    Ctrl-C while the checkpoint is written is ignored: the write is atomic and short.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()


class TrainingInterrupted(Exception):
    """Raised after a requested stop was honoured and a checkpoint written; the CLI exits with 130."""


class SessionPaused(TrainingInterrupted):
    """Raised when a stage stopped on purpose after its ``session_steps``, a checkpoint written: the
    same command resumes it (the CLI exits with 130, as for a stop request)."""
