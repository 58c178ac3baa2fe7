"""Real pretrain runs with gradient caching (``micro_batch_size``), through the CLI.

* SimCLR with BatchNorm in both modes of ``micro_batch_norm``, micro-batches of 5 of a batch of 16 (the
  last one smaller): a run killed after a random checkpoint and resumed ends with the uninterrupted
  run's weights, running statistics, optimizer state and losses.
* Two torchrun processes (DDP-wrapped method, global BatchNorm, gathered negatives) with micro-batches
  of 3 follow the loss curve of one process with micro-batches of 5: the micro-batch size does not
  change what is trained, and the gradients are averaged over processes once per step.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import torch

from tests.engine.killed_runs import final_state, killed_and_resumed
from tests.engine.recipes import tiny_recipe
from tests.engine.test_pretrain import BIN, losses, run_cli, write


def recipe(batch_norm: str) -> str:
    """The tiny SimCLR recipe (BatchNorm in encoder and head), 16 images in micro-batches of 5."""
    stage = f'micro_batch_size = 5\nmicro_batch_norm = "{batch_norm}"'
    return tiny_recipe(epochs=2, batch_size=16, lr=0.1, extra_stage=stage)


# About 20 s each: slow, to keep the default suite under 10 minutes on 2 cores; test_gradient_cache.py
# checks the RNG replay and the frozen running statistics the resume relies on, in the default set.
@pytest.mark.slow
@pytest.mark.parametrize("batch_norm", ["per_micro_batch", "whole_batch"])
def test_a_killed_micro_batched_run_resumes_to_the_same_state(batch_norm, tmp_path):
    path = write(tmp_path, recipe(batch_norm))  # 4 steps per epoch, 8 steps
    reference, interrupted, kill_after = killed_and_resumed(path, tmp_path, (2, 6))

    expected, actual = final_state(reference), final_state(interrupted)
    assert any("running_mean" in name for name in expected["method"])
    for part in ("method", "optimizer"):
        flat_expected, flat_actual = _tensors(expected[part]), _tensors(actual[part])
        assert flat_expected.keys() == flat_actual.keys()
        for name in flat_expected:
            assert torch.equal(flat_expected[name], flat_actual[name]), (
                f"{part} {name} (killed after {kill_after})"
            )
    assert losses(interrupted) == losses(reference)


@pytest.mark.slow  # 18 s; test_gradient_cache.py compares 2 gloo processes with 1 exactly, in the default set
def test_two_processes_with_micro_batches_follow_one_process(tmp_path):
    def recipe_with(micro: int) -> str:
        stage = f'micro_batch_size = {micro}\nmicro_batch_norm = "whole_batch"'
        return tiny_recipe(epochs=2, augmentations="none", lr=0.2, extra_stage=stage)

    one = write(tmp_path, recipe_with(5), "one.toml")
    single = run_cli("run", str(one), "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    two = write(tmp_path, recipe_with(3), "two.toml")
    command = [str(BIN / "torchrun"), "--nproc_per_node", "2", "-m", "contrastive_core.cli", "run", str(two)]
    double = subprocess.run(
        [*command, "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    assert "global batch 16 = 2 processes x 8 images" in double.stdout
    torch.testing.assert_close(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-4, atol=1e-5)


def _tensors(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested state dict, under a dotted name."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    if isinstance(state, dict):
        found = {}
        for key, value in state.items():
            found |= _tensors(value, f"{prefix}.{key}" if prefix else str(key))
        return found
    if isinstance(state, list | tuple):
        found = {}
        for index, value in enumerate(state):
            found |= _tensors(value, f"{prefix}.{index}")
        return found
    return {}
