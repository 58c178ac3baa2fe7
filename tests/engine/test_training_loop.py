"""The training loop on its own: resume, checkpoints, the NaN/inf guard, stop requests, restart points."""

from __future__ import annotations

import signal
from functools import partial

import pytest
import torch
from torch import nn

from contrastive_core.engine import (
    CheckpointError,
    CheckpointManager,
    NonFiniteLossError,
    TrainingInterrupted,
    TrainingLoop,
    cosine_schedule,
    load_file,
)

STEPS_PER_EPOCH = 3
EPOCHS = 3


class Counter:
    """A stateful object that is no torch object (any state_dict/load_state_dict pair can be registered)."""

    def __init__(self) -> None:
        self.count = 0

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.count = state["count"]


class Parts:
    """A tiny training setup; ``seed`` sets the initial weights (resume must replace them)."""

    def __init__(self, directory, seed: int = 0, **options) -> None:
        torch.manual_seed(seed)
        self.model = nn.Linear(4, 2)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, partial(cosine_schedule, 1.0, 0.0, total_steps=STEPS_PER_EPOCH * EPOCHS)
        )
        self.counter = Counter()
        self.generator = torch.Generator().manual_seed(1234 + seed)
        self.loop = TrainingLoop(
            CheckpointManager(directory, keep_last=2),
            {
                "model": self.model,
                "optimizer": self.optimizer,
                "scheduler": self.scheduler,
                "counter": self.counter,
            },
            self.generator,
            steps_per_epoch=STEPS_PER_EPOCH,
            total_steps=STEPS_PER_EPOCH * EPOCHS,
            device="cpu",
            **options,
        )

    def step(self, batch: torch.Tensor) -> torch.Tensor:
        """One SGD step on ``batch`` plus noise from the augmentation generator and the global one."""
        noisy = batch + torch.randn(batch.shape, generator=self.generator) + 0.1 * torch.randn(batch.shape)
        loss = self.model(noisy).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.counter.count += 1
        return loss.detach()


def epoch_data(epoch: int, first: int) -> list[torch.Tensor]:
    """The batches of ``epoch`` from its step ``first`` on (a fixed function of epoch and step)."""
    return [torch.full((2, 4), float(epoch * 10 + step)) for step in range(first, STEPS_PER_EPOCH)]


def train(parts: Parts, crash_at: int | None = None) -> list[float]:
    """Resume, then train to the end, saving at every epoch end; raise at step ``crash_at``."""
    parts.loop.resume()
    losses = []
    for _epoch, batch in parts.loop.batches(epoch_data):
        losses.append(float(parts.step(batch)))
        step = parts.loop.record(torch.tensor(losses[-1]))
        if step == crash_at:
            raise RuntimeError("simulated crash")
        if parts.loop.end_of_epoch:
            parts.loop.save()
    return losses


def test_resume_restores_every_registered_object_and_the_generators_bit_exactly(tmp_path):
    reference = Parts(tmp_path / "reference")
    reference_losses = train(reference)

    crashed = Parts(tmp_path / "run")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashed, crash_at=5)  # mid-epoch 2: the last checkpoint is step 3
    state = load_file(tmp_path / "run" / "step-00000003" / "state.pt")
    assert sorted(state) == ["counter", "model", "optimizer", "scheduler", "step"]
    rng = load_file(tmp_path / "run" / "step-00000003" / "rng-rank0.pt")

    torch.manual_seed(99)  # resume must restore the global generator as well
    resumed = Parts(tmp_path / "run", seed=7)
    assert resumed.loop.resume() == 3 and resumed.loop.step == 3
    for key in ("model", "optimizer", "scheduler", "counter"):
        assert _equal(getattr(resumed, key).state_dict(), state[key]), key
    assert torch.equal(resumed.generator.get_state(), rng["augmentation"])
    assert torch.equal(torch.get_rng_state(), rng["torch"])

    resumed_losses = train(resumed)
    assert resumed_losses == reference_losses[3:]  # the same batches, noise and updates
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.counter.count == reference.counter.count == STEPS_PER_EPOCH * EPOCHS


def test_a_checkpoint_of_another_model_is_named_instead_of_a_traceback(tmp_path):
    train(Parts(tmp_path / "run"))
    other = Parts(tmp_path / "run")
    other.model = nn.Linear(4, 3)  # a changed model: its weights do not fit the checkpoint's
    other.loop.state["model"] = other.model
    with pytest.raises(
        CheckpointError, match=r"step-00000009 does not fit this run's model: RuntimeError: .* size mismatch"
    ):
        other.loop.resume()


def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one(tmp_path):
    train(Parts(tmp_path / "run"))  # keeps the checkpoints of steps 6 and 9
    (tmp_path / "run" / "step-00000009" / "state.pt").write_bytes(b"\x00" * 100)
    said: list[str] = []
    resumed = Parts(tmp_path / "run", say=said.append)
    assert resumed.loop.resume() == 6
    assert "step-00000009" in said[0] and "trying the previous checkpoint" in said[0]
    assert said[-1].endswith("resuming from " + str(tmp_path / "run" / "step-00000006") + " (step 6 of 9)")


def test_absent_objects_are_saved_empty_and_not_loaded(tmp_path):
    model = nn.Linear(2, 2)
    manager = CheckpointManager(tmp_path)
    generator = torch.Generator()
    weights = {name: torch.full_like(value, 3.0) for name, value in model.state_dict().items()}
    manager.save(
        4,
        {"method": weights, "scheduler": {}, "step": 4},
        {"torch": torch.get_rng_state(), "cuda": [], "augmentation": generator.get_state()},
    )
    loop = TrainingLoop(
        manager,
        {"method": model, "scheduler": None},
        generator,
        steps_per_epoch=2,
        total_steps=10,
        device="cpu",
        save_epoch=True,
    )
    assert loop.resume() == 4
    assert torch.equal(model.weight, torch.full((2, 2), 3.0))
    loop.record(torch.tensor(1.0))
    loop.save()
    state = load_file(tmp_path / "step-00000005" / "state.pt")
    assert list(state) == ["method", "scheduler", "step", "epoch"]
    assert state["scheduler"] == {} and state["step"] == 5 and state["epoch"] == 2


def test_a_nan_at_step_k_raises_at_the_check_with_k_and_is_never_saved(tmp_path):
    said = []
    loop = TrainingLoop(
        CheckpointManager(tmp_path),
        {},
        torch.Generator(),
        steps_per_epoch=4,
        total_steps=20,
        device="cpu",
        say=said.append,
        non_finite_advice="Lower the learning rate.",
    )
    loop.resume()
    for _ in range(2):
        loop.record(torch.tensor(1.0))
    loop.save()
    for loss in (1.0, float("nan"), 2.0, float("inf")):  # steps 3 to 6: the first bad one is 4
        loop.record(torch.tensor(loss))
    message = (
        r"^the loss became NaN or infinite at step 4; stopped without saving that state\. "
        r"Last good checkpoint: .*step-00000002\. Lower the learning rate\.$"
    )
    with pytest.raises(NonFiniteLossError, match=message):
        loop.check_finite()
    with pytest.raises(NonFiniteLossError, match=message):
        loop.save()
    with pytest.raises(NonFiniteLossError, match=message):
        loop.take_means()
    assert [path.name for path in CheckpointManager(tmp_path).completed()] == ["step-00000002"]
    assert NonFiniteLossError.exit_code == 1


def test_the_error_can_name_the_epoch_and_the_run(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path),
        {},
        torch.Generator(),
        steps_per_epoch=4,
        total_steps=20,
        device="cpu",
        label="finetune",
        non_finite_at="epoch",
        non_finite_advice="Lower lr and run again.",
    )
    for loss in (1.0,) * 5 + (float("nan"),):  # step 6: the second epoch
        loop.record(torch.tensor(loss))
    with pytest.raises(
        NonFiniteLossError,
        match=r"^finetune: the loss became NaN or infinite in epoch 2; .* Last good checkpoint: none\. Lower lr",
    ):
        loop.check_finite()


def test_a_stop_request_saves_and_raises(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path), {}, torch.Generator(), steps_per_epoch=4, total_steps=8, device="cpu"
    )
    before = signal.getsignal(signal.SIGTERM)
    with loop:
        loop.record(torch.tensor(1.0))
        loop.stop_if_requested()  # nothing requested: goes on
        loop.record(torch.tensor(1.0))
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(TrainingInterrupted) as caught:
            loop.stop_if_requested()
    assert signal.getsignal(signal.SIGTERM) is before
    assert str(caught.value) == (
        f"stopped by SIGTERM at step 2 of 8; checkpoint saved in {tmp_path / 'step-00000002'}"
    )
    assert load_file(tmp_path / "step-00000002" / "state.pt") == {"step": 2}


def test_processes_training_together_agree_on_stopping(tmp_path):
    """With ``reduce`` (an all-reduce), a request is honoured only where the processes agree, and a
    request of another process stops this one too. The fake all-reduce adds another process's values."""
    calls = []
    other_process = iter([0.0, 1.0, 0.0])  # its stop requests at the two agreements, then its NaN flag

    def reduce(tensor: torch.Tensor, op: str) -> torch.Tensor:
        calls.append(op)
        return tensor + next(other_process)

    loop = TrainingLoop(
        CheckpointManager(tmp_path),
        {},
        torch.Generator(),
        steps_per_epoch=4,
        total_steps=8,
        device="cpu",
        reduce=reduce,
    )
    with loop:
        loop.record(torch.tensor(1.0))
        loop.stop_if_requested(agree=False)
        assert calls == []  # no collective between agreement points
        loop.stop_if_requested(agree=True)
        assert calls == ["sum"]
        loop.record(torch.tensor(1.0))
        with pytest.raises(TrainingInterrupted, match="^stopped by another process at step 2 of 8"):
            loop.stop_if_requested(agree=True)
    assert calls == ["sum", "sum", "sum"]  # the stop flags, then the NaN/inf guard before saving
    assert CheckpointManager(tmp_path).latest().name == "step-00000002"


def test_a_nan_seen_only_by_another_process_stops_this_one_too(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path),
        {},
        torch.Generator(),
        steps_per_epoch=4,
        total_steps=8,
        device="cpu",
        reduce=lambda tensor, op: tensor + 1 if op == "sum" else tensor,
    )
    loop.record(torch.tensor(1.0))
    with pytest.raises(NonFiniteLossError, match="^the loss became NaN or infinite in another process;"):
        loop.save()
    assert CheckpointManager(tmp_path).latest() is None


def test_interval_means_over_the_steps_since_the_last_call(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path), {}, torch.Generator(), steps_per_epoch=10, total_steps=10, device="cpu"
    )
    loop.record(torch.tensor(1.0), {"accuracy": torch.tensor(0.5)})
    loop.record(torch.tensor(3.0), {"accuracy": torch.tensor(1.0)})
    means = loop.take_means()
    assert (means.steps, means.loss, means.metrics) == (2, 2.0, {"accuracy": 0.75})
    loop.record(torch.tensor(5.0))
    assert loop.take_means().loss == 5.0
    empty = loop.take_means()
    assert (empty.steps, empty.loss, empty.metrics) == (0, 0.0, {})


def test_restart_points_mid_epoch_and_a_cut_last_epoch(tmp_path):
    """Resumed at step 6 of epochs of 4 steps with 10 steps in all: the rest of epoch 1 from its step 2,
    then epoch 2 cut after 2 steps."""
    manager = CheckpointManager(tmp_path)
    manager.save(
        6,
        {"step": 6},
        {"torch": torch.get_rng_state(), "cuda": [], "augmentation": torch.Generator().get_state()},
    )
    loop = TrainingLoop(manager, {}, torch.Generator(), steps_per_epoch=4, total_steps=10, device="cpu")
    assert loop.resume() == 6
    asked = []

    def epoch_batches(epoch: int, first: int) -> range:
        asked.append((epoch, first))
        return range(first, 4)

    seen = []
    for epoch, batch in loop.batches(epoch_batches):
        step = loop.record(torch.tensor(0.0))
        seen.append((epoch, batch, step, loop.end_of_epoch))
    assert asked == [(1, 2), (2, 0)]
    assert seen == [(1, 2, 7, False), (1, 3, 8, True), (2, 0, 9, False), (2, 1, 10, True)]
    assert list(loop.batches(epoch_batches)) == []  # done


def test_a_body_that_records_no_step_is_an_error_not_a_hang(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path), {}, torch.Generator(), steps_per_epoch=2, total_steps=4, device="cpu"
    )
    with pytest.raises(RuntimeError, match="no step was recorded"):
        for _ in loop.batches(lambda epoch, first: range(first, 2)):
            pass


def test_a_process_that_only_reads_writes_no_checkpoint(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path),
        {},
        torch.Generator(),
        steps_per_epoch=2,
        total_steps=4,
        device="cpu",
        saves=False,
    )
    loop.resume()
    loop.record(torch.tensor(1.0))
    loop.save()
    assert not tmp_path.joinpath("step-00000001").exists()


def _equal(a, b) -> bool:
    """Nested state dicts equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.skipif(not torch.cuda.is_available(), reason="host-device synchronisation needs a GPU")
def test_recording_a_step_never_waits_for_the_device(tmp_path):
    loop = TrainingLoop(
        CheckpointManager(tmp_path), {}, torch.Generator(), steps_per_epoch=4, total_steps=8, device="cuda"
    )
    loss, metrics = torch.ones((), device="cuda"), {"accuracy": torch.ones((), device="cuda")}
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            loop.record(loss, metrics)
        loop.stop_if_requested()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert loop.take_means().loss == 1.0
