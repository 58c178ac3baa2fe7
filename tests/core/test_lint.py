"""``contrastive lint``: SimCLR's published settings against shipped and deliberately changed recipes,
allowances, exit codes and the JSON output, through the real command in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contrastive_core import cli, default_registry, load_recipe
from contrastive_core.recipes import ABSENT, lint_allowances, lint_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
#: The shipped SimCLR reproduction recipes: they lint clean (departures only with a documented reason).
REPRODUCTIONS = [
    "simclr_r50.toml",
    "simclr_cifar10_r18.toml",
    "simclr_stl10_r18.toml",
    "simclrv2_r50_imagenet.toml",
]


def lint(path: Path, *extra: str) -> int:
    return cli.main(["lint", str(path), *extra])


@pytest.mark.parametrize("name", REPRODUCTIONS)
def test_the_shipped_reproduction_recipes_lint_clean(name, capsys):
    assert lint(RECIPES / name) == 0
    assert "0 departures" in capsys.readouterr().out


R50 = (RECIPES / "simclr_r50.toml").read_text()

#: (change to simclr_r50.toml, the departing path, the recipe's value, the paper's value).
CHANGES = [
    ("temperature = 0.1", "temperature = 0.5", "loss.temperature", 0.5, 0.1),
    ("batch_size = 4096\nnum_workers", "batch_size = 256\nnum_workers", "stages[0].batch_size", 256, 4096),
    ("strength = 1.0", "strength = 0.5", "augmentations[2].strength", 0.5, 1.0),
    (
        '[[augmentations]]\ntype = "gaussian_blur"\np = 0.5\nkernel_fraction = 0.1\nsigma = [0.1, 2.0]\n',
        "",
        "augmentations[gaussian_blur]",
        False,
        True,
    ),
    ("num_layers = 2", "num_layers = 1", "model.head.num_layers", 1, 2),
    ("scale = [0.08, 1.0]", "scale = [0.2, 1.0]", "augmentations[0].scale", [0.2, 1.0], [0.08, 1.0]),
    ('momentum_form = "reference"', 'momentum_form = "sgd"', "optimizer.momentum_form", "sgd", "reference"),
    ('reduction = "sum_of_views"', 'reduction = "mean"', "loss.reduction", "mean", "sum_of_views"),
    ('protocol = "augmented"', 'protocol = "precomputed"', "stages[1].protocol", "precomputed", "augmented"),
    (
        "zero_init_residual = true",
        "zero_init_residual = false",
        "model.encoder.zero_init_residual",
        False,
        True,
    ),
    ("weight_decay = 1e-6", "weight_decay = 1e-5", "optimizer.weight_decay", 1e-5, 1e-6),
    ("warmup_epochs = 10", "warmup_epochs = 5", "scheduler.warmup_epochs", 5.0, 10.0),
]


@pytest.mark.parametrize(("old", "new", "path", "recipe_value", "published"), CHANGES)
def test_every_deliberate_change_is_found(tmp_path, capsys, old, new, path, recipe_value, published):
    assert R50.count(old) == 1
    changed = tmp_path / "changed.toml"
    changed.write_text(R50.replace(old, new))
    assert lint(changed, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "simclr" and report["dataset"] == "image_folder"
    (departure,) = [d for d in report["departures"] if d["path"] == path]
    assert departure["recipe"] == recipe_value and departure["published"] == published
    assert departure["source"] and departure["allowed"] is False
    # Nothing else departs, but the removed op's own values (reported as absent: null).
    others = [d for d in report["departures"] if d is not departure]
    assert all(d["path"].startswith(path + ".") and d["recipe"] is None for d in others)
    assert len(others) == (3 if "gaussian_blur" in path else 0)


def test_removing_the_colour_op_reports_it_and_its_values_as_absent(tmp_path):
    without = R50.replace('[[augmentations]]\ntype = "color_jitter"\nstrength = 1.0\np = 0.8\n', "")
    path = tmp_path / "no_colour.toml"
    path.write_text(without)
    registry = default_registry()
    result = lint_recipe(load_recipe(path, registry=registry), registry, without)
    found = {departure.path: departure.recipe_value for departure in result.departures}
    assert found == {
        "augmentations[color_jitter]": False,
        "augmentations[color_jitter].strength": ABSENT,
        "augmentations[color_jitter].p": ABSENT,
    }
    assert all(
        "Table 3" in d.setting.effect for d in result.departures if d.path != "augmentations[color_jitter].p"
    )


def test_a_documented_departure_is_allowed_with_its_reason(tmp_path, capsys):
    changed = tmp_path / "allowed.toml"
    changed.write_text(
        R50.replace("temperature = 0.1", "temperature = 0.2  # lint: allow temperature (a sweep)")
    )
    assert lint(changed) == 0
    out = capsys.readouterr().out
    assert "allowed: a sweep" in out and "0 departures, 1 allowed" in out
    assert lint_allowances("x = 1  # lint: allow stages[0].batch_size: memory\n") == {
        "stages[0].batch_size": "memory"
    }


def test_the_table_shows_key_values_source_and_effect(tmp_path, capsys):
    changed = tmp_path / "changed.toml"
    changed.write_text(R50.replace("temperature = 0.1", "temperature = 1.0"))
    assert lint(changed) == 1
    out = " ".join(capsys.readouterr().out.split())
    for text in ("loss.temperature", "1 ", "0.1", "Sec. 5.1", "Table 5", "1 departure"):
        assert text in out


def test_the_cifar_settings_apply_to_cifar_recipes_only(tmp_path, capsys):
    cifar = (RECIPES / "simclr_cifar10_r18.toml").read_text()
    path = tmp_path / "cifar.toml"
    path.write_text(cifar.replace("temperature = 0.5\nreduction", "temperature = 0.1\nreduction"))
    assert lint(path, "--json") == 1
    (departure,) = json.loads(capsys.readouterr().out)["departures"]
    assert departure["path"] == "loss.temperature" and departure["published"] == 0.5
    assert "B.9" in departure["source"]


def test_a_bad_recipe_exits_2_and_a_method_without_a_table_0(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(R50.replace("temperature = 0.1", "temprature = 0.1"))
    assert lint(bad) == 2
    assert "loss.temprature" in capsys.readouterr().err
    assert lint(RECIPES / "byol_r50.toml") == 0
    assert "publishes no settings" in capsys.readouterr().out


def test_the_quickstart_is_no_reproduction_and_shows_its_departures(capsys):
    assert lint(RECIPES / "quickstart.toml") == 1
    assert "departures" in capsys.readouterr().out
