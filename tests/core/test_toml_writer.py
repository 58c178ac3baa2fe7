"""The TOML writer round-trips through tomllib for any data a recipe can dump to, shipped recipes included."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastive_core.recipes import dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.toml"))

keys = st.text(min_size=1, max_size=8)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
arrays = st.lists(scalars, max_size=4)
leaf_tables = st.dictionaries(keys, st.one_of(scalars, arrays), max_size=4)
tables = st.recursive(
    leaf_tables,
    lambda inner: st.dictionaries(
        keys, st.one_of(scalars, arrays, inner, st.lists(inner, min_size=1, max_size=3)), max_size=4
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_round_trip(data):
    assert tomllib.loads(dumps(data)) == data


def test_special_floats_header_and_none():
    text = dumps(
        {"a": math.inf, "b": -math.inf, "c": None, "d": {"e": None, "f": 1}}, header="resolved\nrecipe"
    )
    assert text.startswith("# resolved\n# recipe\n")
    data = tomllib.loads(text)
    assert data == {"a": math.inf, "b": -math.inf, "d": {"f": 1}}
    assert math.isnan(tomllib.loads(dumps({"n": math.nan}))["n"])


def test_none_is_dropped_from_tables_inside_arrays_of_tables():
    data = {"stages": [{"type": "pretrain", "epochs": None}, {"type": "knn_eval"}]}
    assert tomllib.loads(dumps(data)) == {"stages": [{"type": "pretrain"}, {"type": "knn_eval"}]}


def test_values_toml_cannot_hold_are_refused_with_their_type():
    with pytest.raises(TypeError, match="NoneType"):
        dumps({"scale": [0.2, None]})  # a null in an array has no 'default' meaning to fall back on
    with pytest.raises(TypeError, match="object"):
        dumps({"x": object()})


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_every_shipped_recipe_round_trips(recipe):
    data = tomllib.loads(recipe.read_text(encoding="utf-8"))
    assert tomllib.loads(dumps(data)) == data
