"""The stage runner: run directory records, skipping finished stages, refusing mixed or parallel runs."""

from __future__ import annotations

import json
import os
import stat
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


def test_the_same_recipe_laid_out_differently_resumes(tmp_path, toy_registry):
    """Recipes are compared as TOML values: a resolved recipe written by another TOML writer (other
    spacing, order and comments) is the same recipe, and the run resumes."""
    run_dir = tmp_path / "run"
    run(toy_registry, run_dir)
    resolved = run_dir / "recipe.resolved.toml"
    lines = resolved.read_text().splitlines()
    resolved.write_text(
        "# written by an earlier version\n" + "\n\n".join(line.replace(" = ", "=") for line in lines) + "\n"
    )
    run(toy_registry, run_dir)  # no RunDirectoryError
    assert json.loads((run_dir / "toy_runs.json").read_text()) == [
        "toy_stage",
        "toy_stage_2",
    ]  # nothing re-ran
    with pytest.raises(RunDirectoryError, match="holds a run of a different recipe"):
        run(toy_registry, run_dir, overrides=["stages[1].fail=true"])


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


FOREIGN_MANIFESTS = {
    "a web app's": '{"name": "My App", "icons": [], "start_url": "/"}',
    "an unparsable": "garbage{",
    "an old-style (no format)": '{"started_at": "2026-01-01", "command_line": ["x"], "contrastive": "0.1"}',
}


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "resume"])
@pytest.mark.parametrize("manifest", sorted(FOREIGN_MANIFESTS))
def test_a_folder_with_someone_elses_manifest_is_neither_cleared_nor_written(
    tmp_path, toy_registry, manifest, fresh
):
    webapp = tmp_path / "webapp"
    (webapp / "src").mkdir(parents=True)
    (webapp / "src" / "index.js").write_text("console.log(1)")
    (webapp / "README").write_text("read me")
    (webapp / "manifest.json").write_text(FOREIGN_MANIFESTS[manifest])
    before = sorted(path.relative_to(webapp) for path in webapp.rglob("*"))
    with pytest.raises(RunDirectoryError, match="is not a contrastive run directory"):
        run(toy_registry, webapp, fresh=fresh)
    assert sorted(path.relative_to(webapp) for path in webapp.rglob("*")) == before
    assert (webapp / "src" / "index.js").read_text() == "console.log(1)"
    assert (webapp / "manifest.json").read_text() == FOREIGN_MANIFESTS[manifest]


def test_a_run_into_a_non_empty_folder_that_is_not_a_run_writes_nothing(tmp_path, toy_registry):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("buy milk")
    with pytest.raises(RunDirectoryError, match="refusing to write into it"):
        run(toy_registry, folder)
    assert [path.name for path in folder.iterdir()] == ["todo.txt"]


def test_a_run_directory_is_marked_by_its_manifest_and_resumes_and_clears(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    run(toy_registry, run_dir)
    assert (
        json.loads((run_dir / "manifest.json").read_text())["format"]
        == "contrastive run directory, manifest 1"
    )
    run(toy_registry, run_dir)  # resumes: every stage finished earlier
    run(toy_registry, run_dir, overrides=["stages[0].value=5"], fresh=True)
    assert json.loads((run_dir / "results.json").read_text())["toy_stage"]["value"] == 5.0


def test_an_empty_folder_is_used(tmp_path, toy_registry):
    """What a run killed before it wrote its manifest leaves behind, or a folder made for the run."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert run(toy_registry, run_dir)["toy_stage"]["value"] == 1.0
    assert not (run_dir / ".lock").exists()  # the lock is on the folder: nothing to delete to bypass it


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_run_records_get_the_mode_the_umask_gives_any_new_file(tmp_path, toy_registry, umask):
    previous = os.umask(umask)
    try:
        run_dir = tmp_path / "run"
        run(toy_registry, run_dir)
        (tmp_path / "plain.txt").write_text("")  # a file written the ordinary way, for comparison
    finally:
        os.umask(previous)
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert expected == 0o666 & ~umask
    written = ["manifest.json", "recipe.resolved.toml", "results.json", "toy_stage/stage.json"]
    assert {name: stat.S_IMODE((run_dir / name).stat().st_mode) for name in written} == dict.fromkeys(
        written, expected
    )


def test_second_run_into_a_held_directory_refuses(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with _exclusive(run_dir):
        with pytest.raises(RunDirectoryError, match="another run is using"):
            run(toy_registry, run_dir)


def test_a_damaged_stage_marker_is_named_with_what_to_do(tmp_path, toy_registry):
    run_dir = tmp_path / "run"
    run(toy_registry, run_dir)
    (run_dir / "toy_stage" / "stage.json").write_text("[1")
    with pytest.raises(
        RunDirectoryError, match=r"toy_stage/stage.json is damaged: not JSON .* delete it to run"
    ):
        run(toy_registry, run_dir)
