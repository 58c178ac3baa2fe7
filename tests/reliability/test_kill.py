"""SIGKILL a real run at exact points (mid-step, inside checkpoint writes, between stages) and at random.

After every kill the run directory holds complete checkpoints only and no corrupt file, and running
the same command again ends with the same encoder, losses and evaluation as an uninterrupted run.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest

from contrastive_core.engine import CheckpointError, load_file
from tests.reliability.cases import KILL_RUN_STEPS, KILLS, RANDOM_KILLS
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import BIN, ENV, PausedRun, contrastive_in_process
from tests.reliability.run_directory import assert_same_results, assert_sound


def _check_left_behind(checkpoints, case, reference_checkpoint) -> None:
    """The hidden leftover is what the kill point implies: proof that the kill landed where intended."""
    hidden = sorted(path.name for path in checkpoints.glob(".*"))
    if case.left_behind is None:
        assert hidden == []
        return
    leftover = checkpoints / case.left_behind
    assert hidden == [case.left_behind.split("/")[0]]
    if case.left_behind_state == "half written":
        complete = reference_checkpoint / leftover.name
        assert 0 < leftover.stat().st_size < complete.stat().st_size
        with pytest.raises(CheckpointError, match="refusing to load"):
            load_file(leftover)
    elif case.left_behind_state == "complete":
        assert sorted(path.name for path in leftover.iterdir()) == ["rng-rank0.pt", "state.pt"]
        assert load_file(leftover / "state.pt")["step"] == int(leftover.name.split("-")[1].split(".")[0])
    elif case.left_behind_state == "partly deleted":
        assert len(list(leftover.iterdir())) == 2  # one of its three files is gone
    else:  # pragma: no cover - a case with a state this test does not know
        raise AssertionError(case.left_behind_state)


@pytest.mark.parametrize("case", mark_suite(KILLS))
def test_a_kill_at_any_point_loses_nothing(case, kill_recipe, reference_run, tmp_path):
    run_dir = tmp_path / "run"
    paused = PausedRun(case.point, case.count, ["run", str(kill_recipe), "--out", str(run_dir)], tmp_path)
    paused.wait_until_paused()
    assert paused.kill().returncode == -signal.SIGKILL

    checkpoints = run_dir / "pretrain" / "checkpoints"
    assert assert_sound(run_dir) == list(case.checkpoints)
    assert tuple(sorted(path.parent.name for path in run_dir.glob("*/stage.json"))) == case.finished_stages
    reference_checkpoint = reference_run / "pretrain" / "checkpoints" / f"step-{KILL_RUN_STEPS:08d}"
    _check_left_behind(checkpoints, case, reference_checkpoint)

    resumed = contrastive_in_process("run", str(kill_recipe), "--out", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    if case.finished_stages:
        for stage in case.finished_stages:
            assert f"{stage}: finished earlier, skipped" in resumed.stdout
    else:
        assert f"resuming from {checkpoints / f'step-{case.checkpoints[-1]:08d}'}" in resumed.stdout
    assert not list(checkpoints.glob(".*")), "the restart deletes what the kill left behind"
    assert_sound(run_dir)
    assert_same_results(run_dir, reference_run)


def _wait_for_a_checkpoint_after(checkpoints, step, process, timeout=180.0) -> bool:
    """Wait until a checkpoint later than ``step`` exists; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not any(int(path.name.split("-")[1]) > step for path in checkpoints.glob("step-*")):
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "no new checkpoint in time"
        time.sleep(0.005)
    return True


@pytest.mark.parametrize("case", mark_suite(RANDOM_KILLS))
def test_kills_after_random_delays_lose_nothing(case, kill_recipe, reference_run, tmp_path):
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "pretrain" / "checkpoints"
    delays = random.Random()
    latest = 0
    for _ in range(case.kills):
        process = subprocess.Popen(
            [str(BIN / "contrastive"), "run", str(kill_recipe), "--out", str(run_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        if _wait_for_a_checkpoint_after(checkpoints, latest, process):
            time.sleep(delays.uniform(0, case.max_delay_s))
        process.kill()
        process.wait()
        steps = assert_sound(run_dir)
        assert steps and steps[-1] >= latest, "a kill never loses a complete checkpoint"
        latest = steps[-1]
    finished = contrastive_in_process("run", str(kill_recipe), "--out", str(run_dir))
    assert finished.returncode == 0, finished.stderr
    assert_same_results(run_dir, reference_run)
