"""Two real processes started together into one run directory: one trains, the other refuses."""

from __future__ import annotations

import time

import pytest

from tests.reliability.cases import CONCURRENT_RUNS
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import PausedRun
from tests.reliability.run_directory import assert_sound


@pytest.mark.parametrize("case", mark_suite(CONCURRENT_RUNS))
def test_a_second_run_into_a_used_run_directory_refuses(case, kill_recipe, tmp_path):
    run_dir = tmp_path / "run"
    args = ["run", str(kill_recipe), "--out", str(run_dir)]
    # Both stop after the backward pass of their first step, holding the lock if they got it, so the
    # other one is sure to find the directory in use, whichever of the two comes first.
    runs = [PausedRun("backward", 1, args, tmp_path) for _ in range(2)]
    deadline = time.monotonic() + 180
    while not (
        any(run.ready.exists() for run in runs) and any(run.process.poll() is not None for run in runs)
    ):
        assert time.monotonic() < deadline, "neither a paused winner and a refused loser in time"
        assert not all(run.process.poll() is not None for run in runs), [run.finish().stderr for run in runs]
        time.sleep(0.01)
    (winner,) = [run for run in runs if run.ready.exists()]
    (loser,) = [run for run in runs if run is not winner]

    refused = loser.finish()
    assert refused.returncode == 2, refused.stderr
    assert (
        f"error: another run is using {run_dir} (it holds the directory's lock); wait for it to finish or use "
        "another --out directory"
    ) in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr

    winner.wait_until_paused()
    winner.release()
    finished = winner.finish()
    assert finished.returncode == 0, finished.stderr
    assert assert_sound(run_dir)[-1] == 12
