"""``contrastive list``: TOML defaults, ``--json``, and a third party's undescribed field as a warning."""

from __future__ import annotations

import json
import math
import sys
from importlib.metadata import EntryPoint

import pytest

from contrastive_core import __version__, cli
from contrastive_core.cli import toml_value
from contrastive_core.registration import plugin_manager as plugin_manager_module

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

UNDESCRIBED_WARNING = (
    "warning: plugin 'shapes' (registered directly), register_losses(): ShapesLoss.Params fields have no "
    "description (write a docstring under each field): margin"
)


@pytest.fixture
def shapes_entry_points(monkeypatch):
    entries = [EntryPoint("shapes", "tests.core.listing_plugin", "contrastive.plugins")]
    monkeypatch.setattr(plugin_manager_module, "entry_points", lambda group: list(entries))
    monkeypatch.delenv("CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("CONTRASTIVE_BLOCK_PLUGINS", raising=False)


def _rows(text: str) -> dict[str, list[str]]:
    """The table's param rows: parameter -> its cells (type, default, description)."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[2]:
            rows[cells[2]] = cells[3:]
    return rows


def test_defaults_are_shown_as_a_recipe_writes_them(shapes_entry_points, capsys):
    assert cli.main(["list", "loss"]) == 0
    captured = capsys.readouterr()
    rows = _rows(captured.out)
    assert rows["weight"][1] == "(required)"
    assert rows["normalise"][1] == "false"
    assert rows["mode"][0] == "'mean' | 'sum'" and rows["mode"][1] == '"mean"'
    assert rows["scale"][1] == "[0.2, 1.0]"
    assert rows["classes"][1] == '["cat", "dog"]'
    assert rows["limit"][1] == "(unset)"
    assert rows["margin"] == ["float", "0.1", "(no description)"]
    assert " ".join(captured.err.split()) == UNDESCRIBED_WARNING  # listed anyway, with a warning


def test_an_undescribed_field_is_a_warning_of_plugins_not_a_refusal_of_every_command(
    shapes_entry_points, capsys
):
    assert cli.main(["plugins"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "loss: shapes_loss" in out and UNDESCRIBED_WARNING in out
    assert "problem:" not in out


def test_json_lists_every_kind_component_and_param(shapes_entry_points, capsys):
    assert cli.main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["contrastive"] == __version__
    assert set(listing["kinds"]) == {
        "method", "augmentation", "encoder", "head", "loss", "optimizer", "scheduler", "dataset", "stage"
    }  # fmt: skip
    (loss,) = listing["kinds"]["loss"]
    assert {key: loss[key] for key in ("name", "plugin", "summary")} == {
        "name": "shapes_loss",
        "plugin": "shapes",
        "summary": "A loss whose params show every kind of default.",
    }
    params = {param["name"]: param for param in loss["params"]}
    assert list(params) == ["weight", "normalise", "mode", "scale", "classes", "limit", "margin"]
    assert params["weight"] == {
        "name": "weight",
        "type": "float",
        "required": True,
        "description": "Required: a recipe must set it.",
    }
    assert params["scale"]["default"] == [0.2, 1.0] and params["scale"]["required"] is False
    assert params["limit"]["default"] is None and params["limit"]["type"] == "int | None"
    assert params["margin"]["description"] is None


def test_json_of_one_kind(shapes_entry_points, capsys):
    assert cli.main(["list", "losses", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["kinds"]) == ["loss"]


@pytest.mark.parametrize(
    "value",
    [True, 0, -3, 0.5, 1e-06, math.inf, -math.inf, "plain", 'q"uote\\back\nline\ttab\x7f\x01', [1, "a", [2.5]],
     {"key": 1, "with space": "v", "": [True]}],
)  # fmt: skip
def test_toml_value_reads_back_as_the_same_value(value):
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value


def test_toml_value_writes_nan_and_refuses_none():
    assert math.isnan(tomllib.loads(f"v = {toml_value(math.nan)}")["v"])
    with pytest.raises(TypeError, match="NoneType has no TOML form"):
        toml_value(None)
