"""What the user sees while a stage trains: a rich progress bar, or plain lines outside a terminal."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class TrainingProgress:
    """Shows stage, epoch, step, loss, learning rate, views/s and ETA.

    In a terminal: a live rich progress bar. Elsewhere (CI logs, files): one plain line per update.
    ``enabled=False`` (non-main processes) shows nothing.
    """

    def __init__(
        self, console: Console, stage: str, total_steps: int, start_step: int, enabled: bool = True
    ) -> None:
        self.console = console
        self.stage = stage
        self.total_steps = total_steps
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.started = time.monotonic()
        self.start_step = start_step
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._progress.add_task(stage, total=total_steps, completed=start_step, stats="")
            self._progress.start()

    def update(self, step: int, epoch: int, epochs: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        stats = f"loss {metrics['loss']:.4f}  lr {metrics['lr']:.4g}  {metrics['views_per_s']:.0f} views/s"
        if "knn_top1" in metrics:
            stats += f"  knn {metrics['knn_top1']:.3f}"
        if self._progress is not None:
            self._progress.update(
                self._task, completed=step, description=f"{self.stage} epoch {epoch}/{epochs}", stats=stats
            )
            return
        done = step - self.start_step
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total_steps - step) if done > 0 else float("nan")
        self.console.print(
            f"{self.stage} epoch {epoch}/{epochs} step {step}/{self.total_steps} {stats} eta {_clock(eta)}",
            highlight=False,
        )

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing measured yet
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
