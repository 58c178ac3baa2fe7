"""Recipes are data: every recipe validates or gets a RecipeError, and nothing in one is imported or run.

Property-based (hypothesis): the published recipes mutated at random, random documents and random
``--set`` overrides. Fixed attacks: import paths and Python expressions where names and numbers go, a
module that would announce its import, dunder keys, look-alike unicode, deep nesting.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contrastive_core import RecipeError, Registry, get_plugin_manager, validate_recipe
from contrastive_core.recipes import dumps
from tests.reliability.cases import RECIPE_ATTACKS, RECIPE_PROPERTIES
from tests.reliability.interrupted_run import KILL_RECIPE
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import contrastive_in_process

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
BASES = [tomllib.loads(path.read_text()) for path in sorted(RECIPES.glob("*.toml"))] + [
    tomllib.loads(KILL_RECIPE)
]
EXAMPLES = {case.id: case.examples for case in RECIPE_PROPERTIES}
PROPERTY_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_plugin_manager(get_plugin_manager())


def valid_or_recipe_error(data: Any, registry: Registry, overrides: list[str] = ()) -> None:
    """The property: a valid recipe, or a RecipeError whose message can be printed. Anything else fails."""
    try:
        validate_recipe(data, registry=registry, overrides=overrides)
    except RecipeError as error:
        assert str(error).strip()


# ------------------------------------------------------------------------------ generated recipes

KEYS = st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.datetimes()
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``node`` (dict keys and list indices), the root () included."""
    paths = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            paths += _paths(child, (*prefix, index))
    return paths


def _at(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated_recipes(draw) -> dict:
    """A published recipe after 1 to 4 random mutations."""
    recipe = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(recipe)))
        kind = draw(st.sampled_from(["delete", "rename", "retype", "junk table", "nest"]))
        if not path:  # the root itself: only a junk table can go there
            kind = "junk table"
        if kind == "junk table":
            container = _at(recipe, path)
            if isinstance(container, dict):
                container[draw(KEYS)] = draw(st.dictionaries(KEYS, VALUES, max_size=3))
            continue
        parent, last = _at(recipe, path[:-1]), path[-1]
        if kind == "delete":
            del parent[last]
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(last)
        elif kind == "retype":
            parent[last] = draw(VALUES)
        elif kind == "nest":
            value = parent[last]
            for wrap in draw(st.lists(st.sampled_from(["table", "array"]), min_size=1, max_size=120)):
                value = {draw(KEYS): value} if wrap == "table" else [value]
            parent[last] = value
    return recipe


@pytest.mark.parametrize(
    "case", mark_suite([case for case in RECIPE_PROPERTIES if case.id == "mutated-recipes"])
)
def test_mutated_recipes_validate_or_raise_recipe_error(case, registry):
    @settings(max_examples=case.examples, **PROPERTY_SETTINGS)
    @given(mutated_recipes())
    def check(recipe):
        valid_or_recipe_error(recipe, registry)

    check()


@pytest.mark.parametrize(
    "case", mark_suite([case for case in RECIPE_PROPERTIES if case.id == "mutated-recipe-files"])
)
def test_mutated_recipe_files_get_a_clean_answer_from_the_command_line(case, tmp_path_factory):
    @settings(max_examples=case.examples, **PROPERTY_SETTINGS)
    @given(mutated_recipes())
    def check(recipe):
        try:
            text = dumps(recipe)
        except (TypeError, ValueError):  # a value TOML cannot hold (the writer names it)
            assume(False)
        assume(tomllib.loads(text) == recipe)  # what the file says is what was generated
        path = tmp_path_factory.mktemp("mutated") / "recipe.toml"
        path.write_text(text, encoding="utf-8")
        finished = contrastive_in_process("validate", str(path))
        assert finished.returncode in (0, 2)
        assert "Traceback" not in finished.stderr
        if finished.returncode == 2:
            assert finished.stderr.startswith(f"error: {path}: ")

    check()


@pytest.mark.parametrize(
    "case", mark_suite([case for case in RECIPE_PROPERTIES if case.id == "random-documents"])
)
def test_random_documents_validate_or_raise_recipe_error(case, registry):
    sections = st.sampled_from(["run", "data", "augmentations", "model", "loss", "optimizer", "stages"])

    @settings(max_examples=case.examples, **PROPERTY_SETTINGS)
    @given(st.dictionaries(sections | KEYS, VALUES, max_size=6))
    def check(document):
        valid_or_recipe_error(document, registry)

    check()


@pytest.mark.parametrize(
    "case", mark_suite([case for case in RECIPE_PROPERTIES if case.id == "random-overrides"])
)
def test_random_overrides_validate_or_raise_recipe_error(case, registry):
    base = tomllib.loads(KILL_RECIPE)
    known = st.sampled_from(
        ["loss.temperature", "stages[0].epochs", "model.encoder.type", "data", "run.seed"]
    )
    key = known | st.text(max_size=20)
    value = st.sampled_from(['"os.system"', "{type = 1}", "[1, [2]]", "nan", "1e999"]) | st.text(max_size=20)

    @settings(max_examples=case.examples, **PROPERTY_SETTINGS)
    @given(st.lists(st.builds(lambda k, v: f"{k}={v}", key, value) | st.text(max_size=20), max_size=3))
    def check(overrides):
        valid_or_recipe_error(base, registry, overrides)

    check()


# ---------------------------------------------------------------------------------- fixed attacks


@pytest.fixture
def evil_module(tmp_path, monkeypatch) -> Path:
    """A module on sys.path that creates MARKER when imported; returns the MARKER path."""
    marker = tmp_path / "MARKER"
    (tmp_path / "evil_recipe_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\nclass Dataset:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # a `touch MARKER` run by an expression would land here
    return marker


def _attacked(case) -> dict:
    recipe = tomllib.loads(KILL_RECIPE)
    node: Any = recipe
    for part in case.path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[case.path[-1]] = copy.deepcopy(case.value)
    return recipe


@pytest.mark.parametrize("case", mark_suite(RECIPE_ATTACKS))
def test_code_in_a_recipe_is_never_run(case, registry, evil_module, tmp_path):
    recipe = _attacked(case)
    with pytest.raises(RecipeError) as caught:
        validate_recipe(recipe, registry=registry)
    assert case.message in str(caught.value)

    path = tmp_path / "attack.toml"
    path.write_text(dumps(recipe), encoding="utf-8")
    assert tomllib.loads(path.read_text(encoding="utf-8")) == recipe  # the command line reads the same
    finished = contrastive_in_process("validate", str(path))
    assert finished.returncode == 2
    assert "error: " in finished.stderr and case.message in finished.stderr
    assert "Traceback" not in finished.stderr

    assert not evil_module.exists() and not (tmp_path / "MARKER").exists()
    assert "evil_recipe_module" not in sys.modules
