"""The CLI, in process, over the toy plugin found through (faked) entry points."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import jsonschema
import pytest

from contrastive_core import cli
from contrastive_core.registration import plugin_manager as plugin_manager_module
from tests.core.test_recipe import TOY_RECIPE


@pytest.fixture
def toy_entry_points(monkeypatch):
    entries = [EntryPoint("toy", "tests.core.toy_plugin", "contrastive.plugins")]
    monkeypatch.setattr(plugin_manager_module, "entry_points", lambda group: list(entries))
    monkeypatch.delenv("CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("CONTRASTIVE_BLOCK_PLUGINS", raising=False)
    return entries


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY_RECIPE)
    return path


def test_validate_ok(toy_entry_points, recipe_file, capsys):
    assert cli.main(["validate", str(recipe_file)]) == 0
    assert f"ok {recipe_file} (2 stages)" in capsys.readouterr().out


def test_validate_error_exit_code_2_without_traceback(toy_entry_points, recipe_file, capsys):
    recipe_file.write_text(TOY_RECIPE.replace("temperature = 0.2", "temprature = 0.2"))
    assert cli.main(["validate", str(recipe_file)]) == 2
    err = capsys.readouterr().err
    assert f"error: {recipe_file}: 1 problem" in err
    assert "loss.temprature: unknown key 'temprature'; did you mean 'temperature'?" in err
    assert "Traceback" not in err


def test_run_rejects_bad_override_with_exit_2(toy_entry_points, recipe_file, tmp_path, capsys):
    code = cli.main(["run", str(recipe_file), "--out", str(tmp_path / "run"), "--set", "loss.temperature=-1"])
    assert code == 2
    assert "loss.temperature: Input should be greater than 0 (got -1) [from --set loss.temperature=-1]" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_run_with_override(toy_entry_points, recipe_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", str(recipe_file), "--out", str(out), "--set", "stages[1].value=9"]) == 0
    assert json.loads((out / "results.json").read_text())["toy_stage_2"]["value"] == 9.0
    assert "results" in capsys.readouterr().out


def test_list_shows_params_types_defaults_descriptions(toy_entry_points, capsys):
    assert cli.main(["list", "loss"]) == 0
    out = capsys.readouterr().out
    for text in [
        "toy_loss",
        "Squared distance between",
        "temperature",
        "float",
        "0.5",
        "Divides the squared",
        "'mean' | 'sum'",
    ]:
        assert text in out
    assert cli.main(["list", "nonsense"]) == 2


def test_plugins_lists_failures_and_still_shows_the_rest(toy_entry_points, capsys):
    toy_entry_points.append(EntryPoint("broken", "tests.core.raises_on_import", "contrastive.plugins"))
    assert cli.main(["plugins"]) == 2
    out = capsys.readouterr().out
    assert "toy" in out and "loss: toy_loss" in out
    assert "broken" in out and "ImportError" in out
    assert cli.main(["plugins", "--block", "broken"]) == 0
    assert "blocked" in capsys.readouterr().out


def test_broken_plugin_stops_validate_with_a_clear_error(toy_entry_points, recipe_file, capsys):
    toy_entry_points.append(EntryPoint("broken", "tests.core.raises_on_import", "contrastive.plugins"))
    assert cli.main(["validate", str(recipe_file)]) == 2
    err = capsys.readouterr().err
    assert "plugin 'broken'" in err and "failed to load" in err and "--block NAME" in err
    assert cli.main(["--block", "broken", "validate", str(recipe_file)]) == 0


def test_schema_is_valid_json_schema_and_accepts_the_recipe(toy_entry_points, capsys):
    import tomllib

    assert cli.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(tomllib.loads(TOY_RECIPE))
    bad = tomllib.loads(TOY_RECIPE.replace("temperature = 0.2", "temprature = 0.2"))
    assert not validator.is_valid(bad)
    assert "toy_loss" in json.dumps(schema)
