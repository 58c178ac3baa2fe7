"""Measuring a real run of the recipe's training stage (``contrastive bench --end-to-end``).

``contrastive bench`` times the training step on its own. A real run adds the loop around it: the
loader, the interval means and the metrics records, the progress display, the experiment trackers,
checkpoints and the kNN monitor. :class:`EndToEndRun` runs the recipe's training stage itself, through
the same :func:`~contrastive_core.engine.runner.run_recipe` as ``contrastive run``, in a run directory
of its own, in **sessions** of a few steps: the stage's ``session_steps`` pauses it (checkpoint, stop)
and the next session resumes it, so the schedule still spans the whole stage. Every other setting is
the recipe's: its batch, its logging, checkpoint and monitor cadences, its trackers.

The sessions run between the rounds of ``bench``'s parts (one after each round), so the real run and
the full step it is compared with are measured in the same stretches of time: on a machine whose
speed drifts, a slow minute slows both. Experiment trackers are left out (each session would open a
run of its own in the tracker's project). The stage's metrics records say where a session's time went:
``elapsed_s`` (wall time since the session's loop started, at the record), ``checkpoint_s``
(checkpoint writes since the previous record) and ``knn_monitor_s`` (the monitor pass of this record);
the sessions are told apart by the step each started from. From them:

* ``loop``: seconds per step over every log interval after each session's first record at or after
  ``warmup`` steps (the first steps of a session start workers and warm caches), with the intervals'
  checkpoint writes and monitor passes taken out: the loader, the step, the logging. It is their
  total over their steps, since a whole run's time is a sum, its rare slow intervals included; it is
  compared with the mean of the full step's rounds. The median interval is reported beside it;
* ``checkpoint`` and ``knn_monitor``: the mean seconds of one write and of one pass in the run. The
  monitor runs at epoch ends only, so it is measured when the sessions cross one; when no checkpoint
  write fell inside the sessions (a sparse cadence), the run's last checkpoint is written again, timed,
  as the loop writes one;
* ``run (projected)``: the recipe's whole stage (its own ``epochs``/``max_steps``) at those costs:
  every step at the loop's rate plus every checkpoint and monitor pass that its cadence makes.

The goal is a projected run of at least 0.95 of the full step's views/s.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from rich.console import Console

from ..errors import ContrastiveError
from ..recipes.recipe import stage_keys
from ..registration.registry import Registry
from ..run_directory.names import CHECKPOINTS_DIR, METRICS_FILE, STAGE_DONE_FILE
from ..run_directory.records import read_metrics
from .accelerator import get_accelerator
from .benchmark import synchronize
from .checkpoint import CheckpointManager
from .interrupt import SessionPaused, TrainingInterrupted
from .runner import run_recipe
from .training_parts import training_stage


@dataclass(frozen=True)
class EndToEndSettings:
    """``steps`` timed steps in all (None: enough to include one checkpoint write at the recipe's
    ``checkpoint_every_steps``, at least ``minimum_steps`` and at most ``maximum_default_steps``), in
    ``sessions`` sessions that each first run ``warmup`` untimed steps (rounded up to a log step), of
    ``batch_size`` images (None: the stage's), in ``run_dir`` (None: a temporary directory, deleted
    after)."""

    steps: int | None = None
    sessions: int = 1
    minimum_steps: int = 20
    maximum_default_steps: int = 500
    """The default's cap: beyond it, the checkpoint write is timed by rewriting the run's last one."""
    warmup: int = 3
    batch_size: int | None = None
    run_dir: Path | None = None


@dataclass(frozen=True)
class Cadence:
    """When the training stage writes checkpoints and runs its kNN monitor, as ``pretrain`` does: a
    checkpoint every ``checkpoint_every_steps`` steps, at every epoch's end and at the last step; a
    monitor pass at the end of every ``knn_monitor_every_epochs``-th epoch and at the last step."""

    steps_per_epoch: int
    checkpoint_every_steps: int | None
    knn_monitor_every_epochs: int | None

    def checkpoints_before(self, step: int) -> int:
        """Checkpoints written at steps 1 .. ``step`` - 1 (those of a run that goes on past ``step``)."""
        if self.checkpoint_every_steps is None:
            return 0
        last = max(step - 1, 0)
        every, epoch = self.checkpoint_every_steps, self.steps_per_epoch
        both = every * epoch // math.gcd(every, epoch)
        return last // every + last // epoch - last // both

    def checkpoints_in_run(self, total_steps: int) -> int:
        """Checkpoints a run of ``total_steps`` steps writes, its last step's included."""
        if self.checkpoint_every_steps is None:
            return 0
        return self.checkpoints_before(total_steps + 1) + (0 if self._checkpoint_step(total_steps) else 1)

    def knn_monitor_passes_in_run(self, total_steps: int) -> int:
        """Monitor passes a run of ``total_steps`` steps makes, its last step's included."""
        if self.knn_monitor_every_epochs is None:
            return 0
        epochs = total_steps // self.steps_per_epoch
        at_epoch_ends = epochs // self.knn_monitor_every_epochs
        last_is_one = total_steps % self.steps_per_epoch == 0 and epochs % self.knn_monitor_every_epochs == 0
        return at_epoch_ends + (0 if last_is_one else 1)

    def _checkpoint_step(self, step: int) -> bool:
        every = self.checkpoint_every_steps
        return (every is not None and step % every == 0) or step % self.steps_per_epoch == 0


@dataclass(frozen=True)
class EndToEndMeasurement:
    """What the real run of the training stage measured, and the recipe's whole stage projected."""

    stage: str
    sessions: int
    """Sessions that trained (a stage shorter than all of them ends early)."""
    steps: int
    """Timed steps: those of the intervals below."""
    interval_seconds_per_step: list[float]
    """Each timed log interval's seconds per step, its checkpoint writes and monitor passes taken out."""
    views_per_step: int
    window_seconds: float
    """Wall time of the timed intervals, everything included."""
    window_event_seconds: float
    """Of that, checkpoint writes and monitor passes."""
    checkpoint_seconds: float | None
    """The mean seconds of one checkpoint write (None: none was timed)."""
    checkpoints_measured: int
    """Writes reported in the run's records, which ``checkpoint_seconds`` averages unless
    ``checkpoint_source`` is "rewrite" (none did: the last one was written again)."""
    knn_monitor_seconds: float | None
    knn_monitor_passes_measured: int
    run_steps: int
    """The recipe's whole stage: its steps, checkpoint writes and monitor passes."""
    run_checkpoints: int
    run_knn_monitor_passes: int
    run_dir: str | None
    """Where the run's files were kept (None: a temporary directory, deleted)."""
    checkpoint_source: str = "run"

    @property
    def loop_seconds_per_step(self) -> float:
        """The loader, the step and the logging, per step: the timed intervals together (a whole run's
        time is their sum, rare slow intervals included), without their checkpoint writes and passes."""
        return (self.window_seconds - self.window_event_seconds) / self.steps

    @property
    def median_interval_seconds_per_step(self) -> float:
        """The median interval: the figure least moved by bursts of other work on the machine."""
        return statistics.median(self.interval_seconds_per_step)

    @property
    def checkpoint_seconds_per_step(self) -> float:
        """The recipe's checkpoint writes spread over its steps."""
        return (self.checkpoint_seconds or 0.0) * self.run_checkpoints / self.run_steps

    @property
    def knn_monitor_seconds_per_step(self) -> float:
        return (self.knn_monitor_seconds or 0.0) * self.run_knn_monitor_passes / self.run_steps

    @property
    def run_seconds_per_step(self) -> float:
        """The recipe's whole stage per step: the loop plus its checkpoints and monitor passes."""
        return (
            self.loop_seconds_per_step + self.checkpoint_seconds_per_step + self.knn_monitor_seconds_per_step
        )

    def to_json(self, full_seconds_per_step: float | None = None) -> dict[str, Any]:
        """Every field and derived figure; with ``bench``'s full step (the mean of its rounds, as the
        loop is a mean), also the loop's and the run's throughput as fractions of the full step's."""
        ratios = {}
        if full_seconds_per_step is not None:
            ratios = {
                "loop_over_full": full_seconds_per_step / self.loop_seconds_per_step,
                "run_over_full": full_seconds_per_step / self.run_seconds_per_step,
            }
        return (
            asdict(self)
            | ratios
            | {
                "loop_seconds_per_step": self.loop_seconds_per_step,
                "median_interval_seconds_per_step": self.median_interval_seconds_per_step,
                "loop_views_per_s": self.views_per_step / self.loop_seconds_per_step,
                "checkpoint_seconds_per_step": self.checkpoint_seconds_per_step,
                "knn_monitor_seconds_per_step": self.knn_monitor_seconds_per_step,
                "run_seconds_per_step": self.run_seconds_per_step,
                "run_views_per_s": self.views_per_step / self.run_seconds_per_step,
            }
        )


class EndToEndRun:
    """The recipe's training stage, run for real in sessions (see the module docstring).

    Call :meth:`session` once per session (``bench`` calls it after each round of its parts), then
    :meth:`measure`; :meth:`close` (or the ``with`` block) deletes a temporary run directory. Raises
    :class:`ContrastiveError` at once when the recipe cannot be run this way."""

    def __init__(
        self,
        recipe: BaseModel,
        registry: Registry,
        settings: EndToEndSettings,
        *,
        console: Console,
        report: Callable[[str], None] = lambda line: None,
    ) -> None:
        stage = training_stage(recipe, registry)
        if stage is None:
            raise ContrastiveError(
                "contrastive bench --end-to-end runs the stage that trains the recipe's method (such as "
                "pretrain), and the recipe has none"
            )
        if "session_steps" not in type(stage).model_fields:
            raise ContrastiveError(
                f"contrastive bench --end-to-end runs the training stage in sessions of a few steps with its "
                f"session_steps, and stage {stage.type!r} has no such setting"
            )
        self.recipe, self.registry, self.stage = recipe, registry, stage
        self.settings, self.console, self.report = settings, console, report
        self.sessions = max(settings.sessions, 1)
        log_every = getattr(stage, "log_every_steps", 1)
        self.checkpoint_every = getattr(stage, "checkpoint_every_steps", None)
        steps = settings.steps
        if steps is None:
            steps = max(settings.minimum_steps, (self.checkpoint_every or 0) + 1)
            steps = min(steps, max(settings.maximum_default_steps, settings.minimum_steps))
            if self.checkpoint_every is not None and steps > self.checkpoint_every:
                report(
                    f"end to end: {steps} steps, to include a checkpoint at the recipe's "
                    f"checkpoint_every_steps = {self.checkpoint_every} (--end-to-end-steps sets another number)"
                )
        # Each session: untimed steps up to its first record at or after the warmup, then whole log
        # intervals, its share of the timed steps.
        untimed = log_every * math.ceil(settings.warmup / log_every)
        timed = log_every * math.ceil(steps / self.sessions / log_every)
        update: dict[str, Any] = {"session_steps": untimed + timed}
        if settings.batch_size is not None:
            update["batch_size"] = settings.batch_size
        self.session_steps = update["session_steps"]
        # Without experiment trackers: every session would open a run of its own in the user's project.
        self.short = recipe.model_copy(
            update={
                "stages": [stage.model_copy(update=update)],
                "run": recipe.run.model_copy(update={"trackers": ()}),
            }
        )
        self.key = stage_keys(self.short)[0]
        self.temporary = settings.run_dir is None
        if settings.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="contrastive-bench-"))
        else:
            check_end_to_end_dir(settings.run_dir)
            self.run_dir = settings.run_dir
        self.ran = 0
        #: The step each session started from (the last record's before it: a pause is logged).
        self.session_starts: list[int] = []

    def session(self, index: int | None = None) -> None:
        """Train one more session of the stage (nothing once the stage has finished). ``index``: the
        round it follows, as ``bench``'s ``between_rounds`` passes it (not needed here)."""
        if self.ran >= self.sessions or (self.run_dir / self.key / STAGE_DONE_FILE).exists():
            return
        self.ran += 1
        metrics = self.run_dir / self.key / METRICS_FILE
        self.session_starts.append(read_metrics(metrics)[-1]["step"] if metrics.exists() else 0)
        self.report(
            f"end to end: session {self.ran} of {self.sessions}, {self.session_steps} steps of stage "
            f"{self.recipe.stages.index(self.stage) + 1} ({self.stage.type}) in {self.run_dir}"
        )
        try:
            run_recipe(
                self.short,
                registry=self.registry,
                run_dir=self.run_dir,
                console=self.console,
                write_report=False,
            )
        except SessionPaused:
            pass  # the session's end, as planned (the stage's last session finishes it instead)
        except TrainingInterrupted as stopped:
            # A Ctrl-C or SIGTERM the stage honoured: the benchmark stops too, as it would elsewhere.
            raise KeyboardInterrupt(str(stopped)) from None
        finally:
            # The session's objects are garbage now: collected here, outside the clocks, rather than by
            # a collection that would fall into one of the next round's steps.
            gc.collect()

    def measure(self, views_per_step: int) -> EndToEndMeasurement:
        """The measurement from the sessions' records (``views_per_step``: all view groups of every
        image, as ``bench`` counts them); a rewritten checkpoint is timed when none was reported."""
        measured = measure_records(
            read_metrics(self.run_dir / self.key / METRICS_FILE),
            session_starts=self.session_starts,
            stage=self.key,
            warmup=self.settings.warmup,
            views_per_step=views_per_step,
            cadence_settings=self.stage,
            run_dir=None if self.temporary else str(self.run_dir),
        )
        if measured.checkpoint_seconds is None and self.checkpoint_every is not None:
            self.report(
                "end to end: no checkpoint was reported inside the sessions; timing a rewrite of the last"
            )
            rewrite = time_checkpoint_rewrite(
                self.run_dir / self.key, get_accelerator(self.recipe.run).device
            )
            if rewrite is not None:
                measured = dataclasses.replace(
                    measured, checkpoint_seconds=rewrite, checkpoint_source="rewrite"
                )
        return measured

    def close(self) -> None:
        if self.temporary:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> EndToEndRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_end_to_end(
    recipe: BaseModel,
    registry: Registry,
    settings: EndToEndSettings,
    *,
    views_per_step: int,
    console: Console,
    report: Callable[[str], None] = lambda line: None,
) -> EndToEndMeasurement:
    """All the sessions of an :class:`EndToEndRun` one after the other, then its measurement."""
    with EndToEndRun(recipe, registry, settings, console=console, report=report) as run:
        for _ in range(run.sessions):
            run.session()
        return run.measure(views_per_step)


def time_checkpoint_rewrite(stage_dir: Path, device: torch.device) -> float | None:
    """Seconds to write the stage's last checkpoint again, as the loop writes one (the same state,
    loaded onto ``device``, so a GPU run's copy to the host is counted; atomic, into a folder of its
    own beside it, removed after); None when the stage has no checkpoint."""
    loaded = CheckpointManager(stage_dir / CHECKPOINTS_DIR, keep_last=1).load_latest(device)
    if loaded is None:
        return None
    _, state, rng = loaded
    folder = stage_dir / "bench-checkpoint-rewrite"
    try:
        synchronize(device)
        start = time.perf_counter()
        CheckpointManager(folder, keep_last=1).save(int(state["step"]), state, rng)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_end_to_end_dir(run_dir: Path) -> None:
    """The real run starts fresh: its folder must be new or empty (nothing of the user's is touched)."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ContrastiveError(
            f"--end-to-end-dir {run_dir} is not an empty folder: give a new or empty one (the real run "
            "starts fresh there)"
        )


def split_sessions(
    records: Sequence[dict[str, Any]], starts: Sequence[int]
) -> list[tuple[int, list[dict[str, Any]]]]:
    """(start step, records) of each session that logged any, from the step each one started at
    (ascending): a session's records are those after its start and up to the next one's."""
    bounds = [*starts[1:], math.inf]
    sessions = [
        (start, [r for r in records if start < r["step"] <= end])
        for start, end in zip(starts, bounds, strict=True)
    ]
    return [(start, session) for start, session in sessions if session]


def measure_records(
    records: Sequence[dict[str, Any]],
    *,
    session_starts: Sequence[int] = (0,),
    stage: str,
    warmup: int,
    views_per_step: int,
    cadence_settings: BaseModel,
    run_dir: str | None = None,
) -> EndToEndMeasurement:
    """The measurement from a run's metrics records, of the sessions that started at the steps
    ``session_starts`` (see the module docstring); ``cadence_settings`` are the recipe's own stage
    settings (epochs, max_steps and cadences of the whole stage)."""
    if not records or any("elapsed_s" not in record for record in records):
        raise ContrastiveError(
            f"stage {stage!r} does not time its loop: its metrics records need elapsed_s (the pretrain "
            "stage writes it)"
        )
    steps_per_epoch = round(records[-1]["step"] / records[-1]["epoch"])
    cadence = Cadence(
        steps_per_epoch,
        getattr(cadence_settings, "checkpoint_every_steps", None),
        getattr(cadence_settings, "knn_monitor_every_epochs", None),
    )
    intervals: list[float] = []
    steps = 0
    window = events = 0.0
    written = 0
    sessions = split_sessions(records, session_starts)
    for session_start, session in sessions:
        # Writes reported in this session's records: those after its start and before its last record
        # (the last record's own write, and the pause's, come after it).
        written += cadence.checkpoints_before(session[-1]["step"]) - cadence.checkpoints_before(
            session_start + 1
        )
        # A virtual record at the loop's start when no warmup is asked for.
        timed = ([{"step": session_start, "elapsed_s": 0.0}] if warmup == 0 else []) + session
        timed = [r for r in timed if r["step"] >= session_start + warmup]
        for before, after in itertools.pairwise(timed):
            spent = after["elapsed_s"] - before["elapsed_s"]
            taken_out = after.get("checkpoint_s", 0.0) + after.get("knn_monitor_s", 0.0)
            count = after["step"] - before["step"]
            intervals.append((spent - taken_out) / count)
            steps += count
            window += spent
            events += taken_out
    if not intervals:
        raise ContrastiveError(
            f"the run logged no two records after the warmup ({warmup} steps) of a session: give more "
            "--end-to-end-steps or a smaller --warmup"
        )
    checkpoint_total = sum(r.get("checkpoint_s", 0.0) for r in records)
    passes = [r["knn_monitor_s"] for r in records if "knn_monitor_s" in r]
    run_steps = getattr(cadence_settings, "epochs", 1) * steps_per_epoch
    if getattr(cadence_settings, "max_steps", None) is not None:
        run_steps = min(run_steps, cadence_settings.max_steps)
    return EndToEndMeasurement(
        stage=stage,
        sessions=len(sessions),
        steps=steps,
        interval_seconds_per_step=intervals,
        views_per_step=views_per_step,
        window_seconds=window,
        window_event_seconds=events,
        checkpoint_seconds=checkpoint_total / written if written else None,
        checkpoints_measured=written,
        knn_monitor_seconds=sum(passes) / len(passes) if passes else None,
        knn_monitor_passes_measured=len(passes),
        run_steps=run_steps,
        run_checkpoints=cadence.checkpoints_in_run(run_steps),
        run_knn_monitor_passes=cadence.knn_monitor_passes_in_run(run_steps),
        run_dir=run_dir,
    )
