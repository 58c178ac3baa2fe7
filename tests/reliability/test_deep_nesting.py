"""Files nested far deeper than any real one: each reader names the file instead of a RecursionError.

Python's ``json`` and ``tomllib`` parse nested arrays and tables recursively; a file nested a hundred
thousand levels deep (a few hundred kilobytes) makes them raise ``RecursionError``, which is no
``ValueError`` and used to escape as a traceback. Every case gives such a file to a real command.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from contrastive_core import RecipeError, Registry, get_plugin_manager, validate_recipe
from contrastive_core.engine import EncoderFileError, load_encoder
from tests.engine.recipes import FIXTURE
from tests.reliability.cases import DEEP_JSON, DEEP_TOML, DEEPLY_NESTED, nested
from tests.reliability.interrupted_run import KILL_RECIPE
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import Finished, contrastive_in_process
from tests.reliability.run_directory import assert_same_results, interrupted_copy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEEP_ARRAYS = "[" * DEEP_JSON + "]" * DEEP_JSON


def _toml_tables(depth: int) -> str:
    value = "1"
    for _ in range(depth):
        value = f"{{x = {value}}}"
    return value


class Setting:
    """What one case needs: the run directory the command works in and the reference it is compared to."""

    def __init__(self, kill_recipe: Path, reference_run: Path, tmp_path: Path) -> None:
        self.kill_recipe, self.reference_run, self.tmp_path = kill_recipe, reference_run, tmp_path
        self.run_dir = tmp_path / "run"

    def finished_copy(self) -> Path:
        shutil.copytree(self.reference_run, self.run_dir)
        return self.run_dir

    def recipe(self, extra: str) -> Path:
        path = self.tmp_path / "deep.toml"
        path.write_text(KILL_RECIPE + extra, encoding="utf-8")
        return path


def _validate_text(extra: str) -> Callable[[Setting], Finished]:
    return lambda setting: contrastive_in_process("validate", str(setting.recipe(extra)))


def _override(setting: Setting) -> Finished:
    arrays = "[" * DEEP_TOML + "]" * DEEP_TOML
    return contrastive_in_process("validate", str(setting.kill_recipe), "--set", f"data.x={arrays}")


def _recipe_dict(setting: Setting) -> Finished:
    data = tomllib.loads(KILL_RECIPE)
    data["data"]["x"] = nested(DEEP_TOML)
    try:
        validate_recipe(data, registry=Registry.from_plugin_manager(get_plugin_manager()))
    except RecipeError as error:
        return Finished(2, "", f"error: {error}")
    return Finished(0, "", "")


def _run_after(change: Callable[[Setting], Path]) -> Callable[[Setting], Finished]:
    def run(setting: Setting) -> Finished:
        run_dir = change(setting)
        return contrastive_in_process("run", str(setting.kill_recipe), "--out", str(run_dir))

    return run


def _deep_stage_marker(setting: Setting) -> Path:
    run_dir = setting.finished_copy()
    (run_dir / "pretrain" / "stage.json").write_text(DEEP_ARRAYS)
    return run_dir


def _deep_metrics_line(setting: Setting) -> Path:
    run_dir = interrupted_copy(setting.reference_run, setting.run_dir, last_checkpoint=11)
    metrics = run_dir / "pretrain" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([*lines[:3], DEEP_ARRAYS, *lines[3:]]) + "\n")
    return run_dir


def _deep_checksums(setting: Setting) -> Path:
    # Checkpoints 11 and 12 kept: the damaged latest (12) is refused and 11 resumed from.
    run_dir = interrupted_copy(setting.reference_run, setting.run_dir, last_checkpoint=12)
    (run_dir / "pretrain" / "checkpoints" / "step-00000012" / "checksums.json").write_text(DEEP_ARRAYS)
    return run_dir


def _deep_manifest(setting: Setting) -> Path:
    run_dir = setting.finished_copy()
    (run_dir / "manifest.json").write_text(DEEP_ARRAYS)
    return run_dir


def _on_finished_copy(
    file: str, content: Callable[[Path], str], *command: str
) -> Callable[[Setting], Finished]:
    def run(setting: Setting) -> Finished:
        run_dir = setting.finished_copy()
        (run_dir / file).write_text(content(run_dir / file))
        arguments = [
            part.replace("RUN", str(run_dir)).replace("REF", str(setting.reference_run)) for part in command
        ]
        return contrastive_in_process(*arguments)

    return run


def _deep_line_4(path: Path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join([*lines[:3], DEEP_ARRAYS, *lines[3:]]) + "\n"


def _encoder_config(setting: Setting) -> Finished:
    directory = setting.tmp_path / "encoder"
    directory.mkdir()
    for name in ("encoder.json", "encoder.safetensors"):
        shutil.copy(setting.reference_run / "pretrain" / name, directory / name)
    (directory / "encoder.json").write_text(DEEP_ARRAYS)
    with pytest.raises(EncoderFileError, match="encoder.json is not valid JSON") as caught:
        load_encoder(directory)
    assert str(directory) in str(caught.value)
    recipe = setting.tmp_path / "evaluate.toml"
    recipe.write_text(
        f'[run]\nseed = 0\ndevice = "cpu"\n\n[data]\ntype = "fashion_mnist"\nroot = "{FIXTURE}"\n\n'
        f'[[stages]]\ntype = "knn_eval"\nk = 5\nnum_workers = 0\nencoder = "{directory}"\n'
    )
    return contrastive_in_process("run", str(recipe), "--out", str(setting.run_dir))


COMMANDS: dict[str, Callable[[Setting], Finished]] = {
    "recipe-tables": _validate_text(f"\n[extra]\nx = {_toml_tables(DEEP_TOML)}\n"),
    "recipe-arrays": _validate_text(f"\n[extra]\nx = {'[' * DEEP_TOML}{']' * DEEP_TOML}\n"),
    "override": _override,
    "recipe-dict": _recipe_dict,
    "stage-marker": _run_after(_deep_stage_marker),
    "metrics-line-on-resume": _run_after(_deep_metrics_line),
    "checkpoint-checksums": _run_after(_deep_checksums),
    "manifest": _run_after(_deep_manifest),
    "results-in-report": _on_finished_copy("results.json", lambda path: DEEP_ARRAYS, "report", "RUN"),
    "results-in-compare": _on_finished_copy(
        "results.json", lambda path: DEEP_ARRAYS, "compare", "RUN", "REF"
    ),
    "metrics-line-in-report": _on_finished_copy("pretrain/metrics.jsonl", _deep_line_4, "report", "RUN"),
    "resolved-recipe-in-report": _on_finished_copy(
        "recipe.resolved.toml", lambda path: f"x = {_toml_tables(DEEP_TOML)}\n", "report", "RUN"
    ),
    "encoder-config": _encoder_config,
}


def test_every_deeply_nested_case_has_a_command():
    assert sorted(COMMANDS) == sorted(case.id for case in DEEPLY_NESTED)


@pytest.mark.parametrize("case", mark_suite(DEEPLY_NESTED))
def test_a_deeply_nested_file_is_named_not_a_recursion_error(case, kill_recipe, reference_run, tmp_path):
    setting = Setting(kill_recipe, reference_run, tmp_path)
    finished = COMMANDS[case.id](setting)
    assert finished.returncode == case.exit_code, finished.stderr
    assert "Traceback" not in finished.stderr and "RecursionError" not in finished.stderr
    said = " ".join((finished.stdout + finished.stderr).split())
    assert case.message in said
    if case.exit_code == 2:
        assert finished.stderr.startswith("error: ")
    if case.same_results:
        assert_same_results(setting.run_dir, reference_run)
