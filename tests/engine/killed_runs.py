"""A run killed with SIGKILL after a random checkpoint and resumed, next to an uninterrupted one."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import torch

from tests.engine.test_pretrain import BIN, _wait_for_checkpoint, run_cli


def killed_and_resumed(recipe: Path, out: Path, kill_between: tuple[int, int]) -> tuple[Path, Path, int]:
    """Run ``recipe`` to the end into ``out/reference``; run it again into ``out/interrupted``, SIGKILL it
    once its checkpoint of a random step in ``kill_between`` exists, and resume it to the end.

    Returns the two run directories and the step the run was killed after (for failure messages).
    """
    reference = run_cli("run", str(recipe), "--out", str(out / "reference"))
    assert reference.returncode == 0, reference.stderr
    kill_after = random.Random().randint(*kill_between)
    interrupted = out / "interrupted"
    process = subprocess.Popen(
        [str(BIN / "contrastive"), "run", str(recipe), "--out", str(interrupted)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    _wait_for_checkpoint(interrupted, kill_after, process)
    process.kill()
    process.wait()
    resumed = run_cli("run", str(recipe), "--out", str(interrupted))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout, f"killed after step {kill_after}"
    return out / "reference", interrupted, kill_after


def final_state(run_dir: Path) -> dict:
    """The state of the last checkpoint of the run's pretrain stage."""
    checkpoints = sorted((run_dir / "pretrain" / "checkpoints").iterdir())
    return torch.load(checkpoints[-1] / "state.pt", weights_only=True, map_location="cpu")
