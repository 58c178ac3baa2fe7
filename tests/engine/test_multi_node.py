"""Several processes as users launch them with torchrun: 2 nodes, a killed rank, a hung rank, and a
checkpoint resumed on another number of processes.

Every run here is the tiny deterministic recipe (no random augmentation), so the runs being compared
see the same views whatever the process count, and their weights agree to float rounding (the
gradients are summed in another order); runs with the same process count agree bit for bit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from contrastive_core.distributed.unresponsive import (
    DistributedFailure,
    looks_like_a_collective_failure,
    unresponsive_ranks,
)
from tests.engine.recipes import tiny_recipe
from tests.engine.test_pretrain import BIN, _wait_for_checkpoint, losses, run_cli, write

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
RECIPE = tiny_recipe(epochs=2, augmentations="none", lr=0.2)  # 4 steps per epoch, 8 steps
# For runs killed early and resumed elsewhere: steps enough left after the kill that it cannot finish
# first, and a smaller rate, so float rounding drifts no further than in the 8-step runs.
LONGER = tiny_recipe(epochs=4, augmentations="none", lr=0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*launcher: str, recipe: Path, out: Path) -> list[str]:
    return [
        str(BIN / "torchrun"),
        *launcher,
        "-m",
        "contrastive_core.cli",
        "run",
        str(recipe),
        "--out",
        str(out),
    ]


def standalone(recipe: Path, out: Path, *extra: str) -> list[str]:
    return torchrun("--standalone", "--nproc_per_node", "2", *extra, recipe=recipe, out=out)


def encoder(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "pretrain" / "encoder.safetensors"))


def assert_same_weights(run_dir: Path, reference: Path, *, exact: bool) -> None:
    ours, theirs = encoder(run_dir), encoder(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        if exact:
            assert torch.equal(ours[name], theirs[name]), name
        else:
            # Float32 rounding of sums in another order drifts by about 2e-5 in 8 steps here.
            torch.testing.assert_close(ours[name], theirs[name], rtol=1e-3, atol=1e-4, msg=name)


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def kill_with_workers(process: subprocess.Popen) -> None:
    """SIGKILL ``process`` and its children at once: torchrun's workers run in sessions of their own,
    so killing the launcher's process group would leave them training."""
    for pid in [*children(process.pid), process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def worker_of_rank(launcher: subprocess.Popen, rank: int, timeout: float = 60) -> int:
    """The pid of the launcher's worker process with ``RANK=rank`` (read from /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children(launcher.pid):
            try:
                environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in environment:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no worker of rank {rank} under launcher {launcher.pid}")


def _reference(directory: Path, text: str) -> tuple[Path, Path]:
    recipe = write(directory, text)
    done = run_cli("run", str(recipe), "--out", str(directory / "run"))
    assert done.returncode == 0, done.stderr
    return recipe, directory / "run"


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, Path]:
    """(recipe, run directory) of the uninterrupted single-process reference run of RECIPE."""
    return _reference(tmp_path_factory.mktemp("one_process"), RECIPE)


@pytest.fixture(scope="module")
def one_process_longer(tmp_path_factory) -> tuple[Path, Path]:
    """The same for LONGER."""
    return _reference(tmp_path_factory.mktemp("one_process_longer"), LONGER)


def test_two_nodes_of_one_process_train_like_one_process(one_process, tmp_path):
    recipe, reference = one_process
    port, out = free_port(), tmp_path / "two_nodes"
    nodes = [
        subprocess.Popen(
            torchrun(
                "--nnodes",
                "2",
                "--nproc_per_node",
                "1",
                "--node_rank",
                str(node),
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                recipe=recipe,
                out=out,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for node in range(2)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    assert "global batch 16 = 2 processes x 8 images" in outputs[0][0]
    torch.testing.assert_close(losses(out), losses(reference), rtol=1e-4, atol=1e-5)
    assert_same_weights(out, reference, exact=False)


@pytest.mark.slow  # 24 s; single-node SIGKILL resume is in the default set (test_pretrain.py)
def test_a_killed_rank_restarts_every_rank_from_the_last_checkpoint(tmp_path):
    recipe = write(tmp_path, RECIPE)
    reference = subprocess.run(
        standalone(recipe, tmp_path / "reference"), capture_output=True, text=True, env=ENV, timeout=300
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    out = tmp_path / "restarted"
    launcher = subprocess.Popen(
        standalone(recipe, out, "--max-restarts", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    _wait_for_checkpoint(out, 5, launcher)
    os.kill(worker_of_rank(launcher, 1), signal.SIGKILL)  # one rank dies mid-run
    stdout, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, stderr[-3000:]
    assert "resuming from" in stdout  # the restarted ranks went on from a checkpoint, not from step 0
    assert_same_weights(out, tmp_path / "reference", exact=True)
    assert losses(out) == losses(tmp_path / "reference")


@pytest.mark.slow  # 21 s: it waits out a collective timeout
def test_a_hung_rank_is_named_after_the_collective_timeout(tmp_path):
    recipe = write(tmp_path, RECIPE.replace("[run]", "[run]\ncollective_timeout_s = 10", 1))
    out = tmp_path / "hung"
    launcher = subprocess.Popen(
        standalone(recipe, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    _wait_for_checkpoint(out, 3, launcher)
    waiting, hung = worker_of_rank(launcher, 0), worker_of_rank(launcher, 1)
    os.kill(hung, signal.SIGSTOP)  # alive but never answers again
    started = time.monotonic()
    try:
        while Path(f"/proc/{waiting}").exists() and time.monotonic() - started < 120:
            time.sleep(0.2)  # rank 0 gives up after the 10 s timeout and 2 s asking who is alive
    finally:
        os.kill(hung, signal.SIGKILL)  # else torchrun waits 30 s for the stopped process to stop
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    assert "rank 0: a collective operation with the other processes failed" in stderr, stderr[-3000:]
    assert "rank 1 stopped responding" in stderr
    assert time.monotonic() - started < 60


@pytest.mark.parametrize(
    ("first", "then"),
    # 16 s each: slow, to keep the default suite under 10 minutes on 2 cores; the default set resumes
    # checkpoints on one process (test_pretrain.py) and trains two nodes like one (below).
    [pytest.param(2, 1, marks=pytest.mark.slow), pytest.param(1, 2, marks=pytest.mark.slow)],
    ids=["2-then-1", "1-then-2"],
)
def test_a_checkpoint_resumes_on_another_number_of_processes(one_process_longer, tmp_path, first, then):
    recipe, reference = one_process_longer
    out = tmp_path / "run"

    def command(processes: int) -> list[str]:
        if processes == 1:
            return [str(BIN / "contrastive"), "run", str(recipe), "--out", str(out)]
        return standalone(recipe, out)

    interrupted = subprocess.Popen(command(first), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    _wait_for_checkpoint(out, 2, interrupted)
    kill_with_workers(interrupted)  # 14 steps before the end
    resumed = subprocess.run(command(then), capture_output=True, text=True, env=ENV, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"the checkpoint was written by {first} process(es), this run has {then}" in resumed.stdout
    torch.testing.assert_close(losses(out), losses(reference), rtol=1e-4, atol=1e-5)
    assert_same_weights(out, reference, exact=False)


def test_collective_failures_are_told_apart_from_other_errors():
    timed_out = RuntimeError("[gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 10000ms for recv")
    closed = RuntimeError("[pair.cc:561] Connection closed by peer [127.0.0.1]:38094")
    assert looks_like_a_collective_failure(timed_out) and looks_like_a_collective_failure(closed)
    assert not looks_like_a_collective_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not looks_like_a_collective_failure(ValueError("timed out"))  # not a process group's error
    assert unresponsive_ranks() is None  # no process group here: nothing to ask
    named = str(DistributedFailure.explain(timed_out, [1, 3]))
    assert named.startswith("rank 0: a collective operation with the other processes failed ([gloo")
    assert "ranks 1, 3 stopped responding" in named and "collective_timeout_s" in named
    assert "every process is still alive" in str(DistributedFailure.explain(closed, []))
    assert "could not be determined" in str(DistributedFailure.explain(closed, None))


@pytest.mark.slow  # two torchrun launches of 2 processes, about 25 s; one process is in the default set
def test_two_processes_pause_at_session_steps_together_and_resume(one_process, tmp_path):
    """session_steps = 5 of 8 under torchrun: both ranks stop at step 5 (exit 130, one checkpoint of
    both ranks' states), the same command finishes the stage, and the weights are the 1-process run's."""
    _, reference = one_process
    recipe = write(
        tmp_path,
        RECIPE.replace("checkpoint_every_steps = 1", "checkpoint_every_steps = 100\nsession_steps = 5"),
    )
    run_dir = tmp_path / "run"
    paused = subprocess.run(standalone(recipe, run_dir), capture_output=True, text=True, env=ENV, timeout=300)
    assert paused.returncode != 0, paused.stderr
    assert "trained session_steps = 5 at step 5 of 8" in paused.stderr
    checkpoints = sorted(p.name for p in (run_dir / "pretrain" / "checkpoints").iterdir())
    assert checkpoints == ["step-00000004", "step-00000005"]  # the end of epoch 1, and the pause
    assert sorted(
        p.name for p in (run_dir / "pretrain" / "checkpoints" / "step-00000005").glob("rng-rank*.pt")
    ) == [
        "rng-rank0.pt",
        "rng-rank1.pt",
    ]
    finished = subprocess.run(
        standalone(recipe, run_dir), capture_output=True, text=True, env=ENV, timeout=300
    )
    assert finished.returncode == 0, finished.stderr
    assert len(losses(run_dir)) == 8
    assert_same_weights(run_dir, reference, exact=False)
