"""Progress lines with an ETA while an evaluation stage works through a split (computing features,
classifying queries): a 60,000-image feature pass on a CPU takes tens of seconds, and silence that long
looks like a hang.

A line is printed at most every :data:`EVERY_SECONDS` seconds, and a closing line only when progress
was shown, so short passes print nothing. It counts images handed out, without reading anything from
the device, so it adds no host-device synchronisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds between two progress lines.
EVERY_SECONDS = 10.0


class EvaluationProgress:
    """``advance(n)`` after each batch of ``n`` of ``total`` items; ``finish()`` at the end."""

    def __init__(
        self,
        say: Callable[[str], None],
        label: str,
        total: int,
        unit: str = "images",
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say
        self.label = label
        self.total = total
        self.unit = unit
        self.every_seconds = EVERY_SECONDS if every_seconds is None else every_seconds
        self.clock = clock
        self.started = clock()
        self.last_shown = self.started
        self.done = 0
        self.shown = False

    def advance(self, count: int) -> None:
        self.done += count
        now = self.clock()
        if now - self.last_shown < self.every_seconds or self.done >= self.total:
            return
        elapsed = now - self.started
        left = elapsed * (self.total - self.done) / max(self.done, 1)
        self.say(
            f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%), "
            f"about {left:.0f} s left"
        )
        self.last_shown = now
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.say(f"{self.label}: {self.total:,} {self.unit} in {self.clock() - self.started:.0f} s")
