"""The run the kill and write-failure tests interrupt, and its uninterrupted reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.interrupted_run import KILL_RECIPE
from tests.reliability.processes import contrastive_in_process


@pytest.fixture(scope="session")
def kill_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "interrupted.toml"
    path.write_text(KILL_RECIPE)
    return path


@pytest.fixture(scope="session")
def reference_run(kill_recipe, tmp_path_factory) -> Path:
    """The same recipe run without any interruption (in this process: identical numbers, no start-up)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    finished = contrastive_in_process("run", str(kill_recipe), "--out", str(run_dir))
    assert finished.returncode == 0, finished.stderr
    return run_dir
