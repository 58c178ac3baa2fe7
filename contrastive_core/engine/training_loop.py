"""What a training stage does between its steps: resume, checkpoints, the NaN/inf guard, stop requests.

The ``pretrain`` stage and the classifier-training stages (``finetune``, ``semi_supervised``,
``supervised``) write their own step and their own logging; everything around the step is
:class:`TrainingLoop`, so that a run of either resumes, stops and refuses a diverged state the same way:

* **resume**: from the latest complete checkpoint of the stage, every registered object (network or
  method, optimizer, schedule, gradient scaler) and the random number generators, including the
  augmentation generator, so that the resumed run draws the same views as an uninterrupted one;
* **the epoch structure**: :meth:`TrainingLoop.batches` restarts a resumed run in the middle of its
  epoch, at the batch after the last one trained;
* **the NaN/inf guard**: each step's loss is checked on the device (a flag and the first bad step, no
  host-device synchronisation); the flag is read only where the stage logs or saves, and a checkpoint
  is always preceded by that check, so a diverged state is never saved;
* **stop requests**: Ctrl-C and SIGTERM (:class:`~.interrupt.StopRequest`) save a checkpoint at the
  next step boundary and raise :class:`~.interrupt.TrainingInterrupted` (the CLI exits with 130). Several
  processes training together agree on stopping with an all-reduce, so that they all save the same step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import torch

from ..errors import ContrastiveError
from .checkpoint import CheckpointError, CheckpointManager
from .interrupt import SessionPaused, StopRequest, TrainingInterrupted
from .random_state import capture_rng, restore_rng

Batch = TypeVar("Batch")

#: ``accelerator.reduce``: a tensor and "sum" or "mean" -> that reduction over the processes.
Reduce = Callable[[torch.Tensor, str], torch.Tensor]


class NonFiniteLossError(ContrastiveError):
    """The loss became NaN or infinite; the run stopped without checkpointing the bad state."""

    exit_code = 1


class Stateful(Protocol):
    """What a checkpoint holds: a network, an optimizer, a learning-rate schedule, a gradient scaler."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any], /) -> Any: ...


@dataclass(frozen=True)
class IntervalMeans:
    """The mean loss and step metrics of the steps since the previous :meth:`TrainingLoop.take_means`."""

    steps: int
    loss: float
    metrics: dict[str, float]


class TrainingLoop:
    """Resume, checkpoints, the non-finite-loss guard and stop requests of one training stage.

    ``state`` names the objects a checkpoint holds (its ``state.pt`` keys, beside ``"step"``); a value
    may be None (e.g. no schedule): it is saved as ``{}`` and not loaded. ``generator`` is the
    augmentation generator, saved with the global generators in each process's ``rng-rank<R>.pt``.
    Used as a context manager, the loop catches Ctrl-C and SIGTERM (see :meth:`stop_if_requested`).

    The loop counts the steps: :meth:`resume` sets the count, :meth:`record` adds one per step.

    Options:

    * ``reduce``: the all-reduce of the processes that train together (``accelerator.reduce``); None
      when this process trains alone (one process, or an evaluation stage that each process runs by
      itself). The guard, the interval means and stop requests then use no collective;
    * ``saves``: False for a process that only reads the checkpoints another process writes of the same
      computation (the evaluation stages' non-main processes). Processes training together all save:
      each writes its own random state;
    * ``map_location``: where :meth:`resume` loads ``state.pt`` to (``load_state_dict`` copies onto
      the objects' devices in any case);
    * ``save_epoch``: also save ``"epoch"`` (the completed epochs), for people reading the file;
    * ``say``, ``label``: the console line of a resume and the prefix ``"<label>: "`` of it and of the
      non-finite-loss error;
    * ``non_finite_at``: the error names the first bad ``"step"`` or its ``"epoch"`` (1-based), as the
      stage's console lines count; ``non_finite_advice`` ends it (what to change in the recipe).
    """

    def __init__(
        self,
        checkpoints: CheckpointManager,
        state: Mapping[str, Stateful | None],
        generator: torch.Generator,
        *,
        steps_per_epoch: int,
        total_steps: int,
        device: torch.device | str,
        reduce: Reduce | None = None,
        saves: bool = True,
        map_location: torch.device | str = "cpu",
        save_epoch: bool = False,
        say: Callable[[str], Any] = lambda text: None,
        label: str | None = None,
        non_finite_at: Literal["step", "epoch"] = "step",
        non_finite_advice: str = "",
    ) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be at least 1, not {steps_per_epoch}")
        self.checkpoints = checkpoints
        self.state = dict(state)
        self.generator = generator
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.reduce = reduce
        self.saves = saves
        self.map_location = map_location
        self.save_epoch = save_epoch
        self.say = say
        self.prefix = f"{label}: " if label else ""
        self.non_finite_at = non_finite_at
        self.non_finite_advice = non_finite_advice
        #: Steps trained so far (set by :meth:`resume`, one more per :meth:`record`).
        self.step = 0
        self.device = torch.device(device)
        self._stop = StopRequest()
        # Device-side bookkeeping, so that a step never waits for the device.
        self._step_on_device = torch.zeros((), dtype=torch.long, device=self.device)
        self._non_finite = torch.zeros((), dtype=torch.bool, device=self.device)
        self._first_non_finite_step = torch.full((), -1, dtype=torch.long, device=self.device)
        self._loss_sum = torch.zeros((), device=self.device)
        self._metric_sums: dict[str, torch.Tensor] = {}
        self._interval_steps = 0
        # The step the guard last passed at: saving right after logging reads the flag only once.
        self._checked_at: int | None = None

    # --- resume and checkpoints ----------------------------------------------------------------------

    def resume(self) -> int:
        """Load the latest complete checkpoint, if any, into the registered objects and the random
        generators; return the step to go on from (0 for a fresh start). Also deletes what a crash left
        of a checkpoint being written."""
        if self.saves:
            self.checkpoints.remove_stale_temporaries()
        loaded = self.checkpoints.load_latest(self.map_location, say=self.say)
        if loaded is None:
            return self.step
        latest, state, rng = loaded
        for key, target in self.state.items():
            if target is not None:
                try:
                    target.load_state_dict(state[key])
                except (KeyError, RuntimeError, ValueError) as error:
                    # A checkpoint of another model (or a changed one): name it instead of a traceback.
                    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [
                        repr(error)
                    ]
                    detail = " ".join(lines[:2])[
                        :400
                    ]  # torch's first line only says where; the next says what
                    raise CheckpointError(
                        f"{latest} does not fit this run's {key}: {type(error).__name__}: {detail}. Resume "
                        "with the recipe that wrote it, or delete the stage's checkpoints to train it anew"
                    ) from None
        self.step = state["step"]
        self._step_on_device.fill_(self.step)
        restore_rng(rng, self.generator)
        self.say(f"{self.prefix}resuming from {latest} (step {self.step} of {self.total_steps})")
        written_by = self.checkpoints.processes_of(latest)
        if written_by != self.checkpoints.world_size:
            self.say(
                f"{self.prefix}the checkpoint was written by {written_by} process(es), this run has "
                f"{self.checkpoints.world_size}: the data order is the same; "
                + (
                    "the processes it had none for draw their random views from generators seeded from "
                    "rank 0's"
                    if written_by < self.checkpoints.world_size
                    else "the generators of the ranks beyond this run's are not used"
                )
            )
        return self.step

    def save(self) -> None:
        """Checkpoint the current step, after the non-finite guard (which raises instead of saving a
        diverged state). Every process that trains together calls this at the same step."""
        self.check_finite()
        if not self.saves:
            return
        state: dict[str, Any] = {
            key: target.state_dict() if target is not None else {} for key, target in self.state.items()
        }
        state["step"] = self.step
        if self.save_epoch:
            state["epoch"] = self.step // self.steps_per_epoch
        self.checkpoints.save(self.step, state, capture_rng(self.generator))

    # --- the steps -----------------------------------------------------------------------------------

    def batches(self, epoch_batches: Callable[[int, int], Iterable[Batch]]) -> Iterator[tuple[int, Batch]]:
        """(epoch, batch) for every step still to train. ``epoch_batches(epoch, first)`` gives the batches
        of ``epoch`` from its step ``first`` on: a resumed run restarts mid-epoch at the right batch. The
        body calls :meth:`record` once per batch; iteration ends at ``total_steps``, which may cut the
        last epoch short."""
        while self.step < self.total_steps:
            epoch, first = divmod(self.step, self.steps_per_epoch)
            before = self.step
            for batch in epoch_batches(epoch, first):
                yield epoch, batch
                if self.step >= self.total_steps:
                    return
            if self.step == before:  # else the loop would ask for the same batches forever
                raise RuntimeError(
                    f"epoch {epoch} gave no batch from its step {first} on, or no step was recorded"
                )

    def record(self, loss: torch.Tensor, metrics: Mapping[str, torch.Tensor] | None = None) -> int:
        """Count one step done, with its loss and step metrics (device tensors); return the step count.
        Only device operations: the guard's flag and the interval sums are read later."""
        loss = loss.detach()
        self.step += 1
        self._step_on_device += 1
        finite = torch.isfinite(loss)
        self._first_non_finite_step = torch.where(
            ~finite & (self._first_non_finite_step < 0), self._step_on_device, self._first_non_finite_step
        )
        self._non_finite |= ~finite
        self._loss_sum += loss
        for name, value in (metrics or {}).items():
            if name in self._metric_sums:
                self._metric_sums[name] += value.detach()
            else:
                self._metric_sums[name] = value.detach().float().clone()
        self._interval_steps += 1
        return self.step

    @property
    def end_of_epoch(self) -> bool:
        """Whether the last recorded step ended an epoch (or the training)."""
        return self.step % self.steps_per_epoch == 0 or self.step == self.total_steps

    # --- reading the device: the guard, the means of an interval -------------------------------------

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if a recorded loss was NaN or infinite in any process.

        One host-device synchronisation (an all-reduce with several processes); every process calls
        this at the same steps."""
        if self._checked_at == self.step:
            return
        non_finite = self._non_finite.float()
        if self.reduce is not None:
            non_finite = self.reduce(non_finite, "sum")
        if bool(non_finite > 0):
            bad = int(self._first_non_finite_step)  # -1 where only another process saw it
            if bad < 0:
                where = "in another process"
            elif self.non_finite_at == "step":
                where = f"at step {bad}"
            else:
                where = f"in epoch {(bad - 1) // self.steps_per_epoch + 1}"
            message = (
                f"{self.prefix}the loss became NaN or infinite {where}; stopped without saving that state. "
                f"Last good checkpoint: {self.checkpoints.latest() or 'none'}."
            )
            raise NonFiniteLossError(
                f"{message} {self.non_finite_advice}" if self.non_finite_advice else message
            )
        self._checked_at = self.step

    def take_means(self) -> IntervalMeans:
        """The guard, then the mean loss and metrics over the steps since the last call (averaged over
        the processes), and a new interval."""
        self.check_finite()
        steps = max(self._interval_steps, 1)
        means = IntervalMeans(
            self._interval_steps,
            self._mean(self._loss_sum) / steps,
            {name: self._mean(total) / steps for name, total in self._metric_sums.items()},
        )
        self._loss_sum.zero_()
        self._metric_sums.clear()
        self._interval_steps = 0
        return means

    def _mean(self, total: torch.Tensor) -> float:
        return float(self.reduce(total, "mean") if self.reduce is not None else total)

    # --- stop requests ---------------------------------------------------------------------------------

    def __enter__(self) -> TrainingLoop:
        self._stop.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.__exit__(*exc)

    def stop_if_requested(self, *, agree: bool = True) -> None:
        """After a Ctrl-C or SIGTERM: save a checkpoint and raise :class:`TrainingInterrupted`.

        Alone, a request is honoured at once. Processes training together stop only where ``agree`` is
        true (every process passes the same value, e.g. at log steps): there they all-reduce their
        requests, so that all stop at the same step even when the signal reached only some of them."""
        if self.reduce is None:
            stop = self._stop.requested is not None
        elif agree:
            flag = torch.tensor(1.0 if self._stop.requested else 0.0, device=self.device)
            stop = bool(self.reduce(flag, "sum") > 0)
        else:
            stop = False
        if stop:
            self.save()
            raise TrainingInterrupted(
                f"stopped by {self._stop.requested or 'another process'} at step {self.step} of "
                f"{self.total_steps}; checkpoint saved in {self.checkpoints.latest()}"
            )

    def pause(self, reason: str, *, saved: bool = False) -> None:
        """Stop on purpose at this step, as an honoured stop request does: save a checkpoint (unless
        ``saved``: one of this step was just written) and raise :class:`SessionPaused` (a
        :class:`TrainingInterrupted`), so the run resumes from here when started again. Every process
        that trains together calls this at the same step (the reason is a setting, not a signal: no
        collective is needed)."""
        if not saved:
            self.save()
        raise SessionPaused(
            f"{self.prefix}{reason} at step {self.step} of {self.total_steps}; checkpoint saved in "
            f"{self.checkpoints.latest()}"
        )
