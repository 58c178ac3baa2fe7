"""Meta-tests keeping docs, tests, recipes and packaging honest."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest

from contrastive_core import KINDS, default_registry, load_recipe, recipe_model
from contrastive_core.registration import hookspecs, undocumented_fields

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [
    name for name, value in inspect.getmembers(hookspecs) if name.startswith("register_") and callable(value)
]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_there_is_a_hook_per_component_kind():
    assert len(HOOKS) == len(KINDS) == 9


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert re.search(rf"^## {hook}\b", (ROOT / "docs" / "hooks.md").read_text(), re.MULTILINE)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook):
    """Some test module other than this one implements the hook in a plugin it registers."""
    users = [
        path
        for path in (ROOT / "tests").rglob("*.py")
        if path.name != "test_meta.py" and re.search(rf"def {hook}\(", path.read_text())
    ]
    assert users, f"no test plugin implements {hook}"


def test_there_are_recipes():
    assert {path.name for path in RECIPES} >= {
        "quickstart.toml",
        "simclr_r50.toml",
        "simclr_cifar10_r18.toml",
        "simclr_stl10_r18.toml",
        *(
            f"{method}_{setting}.toml"
            for method in ("byol", "moco_v2", "moco_v3", "barlow_twins", "vicreg")
            for setting in ("r50", "cifar10_r18", "fashion_mnist")
        ),
    }


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_recipe_validates_and_matches_the_schema(recipe):
    registry = default_registry()
    load_recipe(recipe, registry=registry)
    schema = recipe_model(registry).model_json_schema()
    jsonschema.Draft202012Validator(schema).validate(tomllib.loads(recipe.read_text()))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_recipe_states_its_target_and_source(recipe):
    first = recipe.read_text().splitlines()[0]
    assert first.startswith("#") and len(first) > 20, f"{recipe.name} must start with the result it targets"


def test_schema_lists_every_registered_component():
    text = json.dumps(recipe_model(default_registry()).model_json_schema())
    registry = default_registry()
    for kind in ("augmentation", "encoder", "head", "loss", "optimizer", "scheduler", "dataset", "stage"):
        for name in registry.names(kind):
            assert f'"{name}"' in text


def test_every_built_in_params_field_has_a_description():
    """The registry only warns about a third party's undescribed field (the component works); the
    built-in plugins describe every field, so that `contrastive list` documents them all."""
    registry = default_registry()
    built_in = [
        registration
        for spec in KINDS.values()
        for registration in registry.registrations(spec.name)
        if registration.cls.__module__.startswith("contrastive_plugins.")
    ]
    assert built_in, "the built-in components were not found"
    undescribed = {
        f"{registration.cls.__module__}.{registration.cls.__qualname__}": fields
        for registration in built_in
        if (fields := undocumented_fields(registration.cls))
    }
    assert not undescribed, f"params fields without a docstring: {undescribed}"
