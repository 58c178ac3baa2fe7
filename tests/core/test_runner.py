"""The stage runner: run directory records, skipping finished stages, refusing mixed or parallel runs."""

from __future__ import annotations

import json
import sys

import pytest
from rich.console import Console

from contrastive_core import validate_recipe
from contrastive_core.engine import RunDirectoryError, run_recipe
from contrastive_core.engine.runner import _exclusive
from tests.core.test_recipe import toy_data

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def run(registry, run_dir, overrides=(), fresh=False):
    recipe = validate_recipe(toy_data(), registry=registry, overrides=overrides)
    console = Console(file=open(run_dir.parent / "console.txt", "a"), width=120)
    return run_recipe(
        recipe, registry=registry, run_dir=run_dir, console=console, fresh=fresh, command_line=["test"]
    )


def test_run_writes_records_and_results(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    results = run(toy_registry, run_dir)
    assert results == {
        "toy_stage": {"value": 1.0, "previous": 0},
        "toy_stage_2": {"value": 2.0, "previous": 1},
    }
    assert json.loads((run_dir / "results.json").read_text()) == results
    resolved = tomllib.loads((run_dir / "recipe.resolved.toml").read_text())
    assert resolved["loss"] == {"type": "toy_loss", "temperature": 0.2, "reduction": "mean"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["command_line"] == ["test"]
    assert manifest["torch"] and manifest["python"] and manifest["started_at"]
    assert [plugin["name"] for plugin in manifest["plugins"]] == ["toy"]
    assert (run_dir / "toy_stage_2" / "artifact.txt").read_text() == "toy_stage_2 saw ['toy_stage']"


def test_resume_skips_finished_stages_and_restores_artifacts(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError, match="failed on purpose"):
        run(toy_registry, run_dir, overrides=["stages[1].fail=true"])
    # A fixed recipe is a different recipe: resuming into the directory is refused.
    with pytest.raises(RunDirectoryError, match="holds a run of a different recipe"):
        run(toy_registry, run_dir)
    assert json.loads((run_dir / "results.json").read_text()) == {"toy_stage": {"value": 1.0, "previous": 0}}
    # The same recipe resumes: the finished first stage is not run again.
    with pytest.raises(RuntimeError):
        run(toy_registry, run_dir, overrides=["stages[1].fail=true"])
    assert json.loads((run_dir / "toy_runs.json").read_text()) == ["toy_stage", "toy_stage_2", "toy_stage_2"]
    done = json.loads((run_dir / "toy_stage" / "stage.json").read_text())
    assert done["artifacts"] == {"artifact": "artifact.txt"}


def test_fresh_starts_over(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    run(toy_registry, run_dir)
    run(toy_registry, run_dir, overrides=["stages[0].value=5"], fresh=True)
    assert json.loads((run_dir / "toy_runs.json").read_text()) == ["toy_stage", "toy_stage_2"]
    assert json.loads((run_dir / "results.json").read_text())["toy_stage"]["value"] == 5.0


def test_fresh_refuses_a_directory_that_is_not_a_run(tmp_path, toy_registry):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(RunDirectoryError, match="not a contrastive run directory"):
        run(toy_registry, precious, fresh=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_second_run_into_a_held_directory_refuses(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with _exclusive(run_dir):
        with pytest.raises(RunDirectoryError, match="another run is using"):
            run(toy_registry, run_dir)
