"""Recipe validation: dotted paths, suggestions, overrides, defaults, resolved TOML."""

from __future__ import annotations

import sys

import pytest

from contrastive_core import RecipeError, build, load_recipe, validate_recipe
from contrastive_core.engine import resolved_toml
from contrastive_core.recipes import stage_keys
from contrastive_core.registration import format_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOY_RECIPE = """
[run]
seed = 3

[data]
type = "toy_data"

[[augmentations]]
type = "toy_flip"
p = 0.25

[model.encoder]
type = "toy_encoder"

[model.head]
type = "toy_head"

[loss]
type = "toy_loss"
temperature = 0.2

[optimizer]
type = "toy_sgd"

[scheduler]
type = "toy_constant"

[[stages]]
type = "toy_stage"

[[stages]]
type = "toy_stage"
value = 2.0
"""


def toy_data() -> dict:
    return tomllib.loads(TOY_RECIPE)


def problems_of(data, registry, **kwargs) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        validate_recipe(data, registry=registry, **kwargs)
    return [str(problem) for problem in caught.value.problems]


def test_valid_recipe_fills_defaults(toy_registry):
    recipe = validate_recipe(toy_data(), registry=toy_registry)
    assert recipe.run.seed == 3 and recipe.run.precision == "no"
    assert recipe.loss.temperature == 0.2 and recipe.loss.reduction == "mean"
    assert recipe.augmentations[0].p == 0.25
    assert recipe.model.encoder.width == 4
    assert [stage.value for stage in recipe.stages] == [1.0, 2.0]


def test_misspelled_key_names_dotted_path_and_suggests(toy_registry):
    data = toy_data()
    data["loss"]["temprature"] = data["loss"].pop("temperature")
    (problem,) = problems_of(data, toy_registry)
    assert problem.startswith("loss.temprature: unknown key 'temprature'; did you mean 'temperature'?")
    assert "Allowed keys: type, temperature, reduction" in problem


@pytest.mark.parametrize(
    ("path", "key", "suggestion"),
    [
        (("run",), "sed", "seed"),
        (("model", "encoder"), "widht", "width"),
        (("augmentations", 0), "pp", "p"),
        (("stages", 1), "valeu", "value"),
        ((), "optimiser", "optimizer"),
    ],
)
def test_unknown_key_anywhere_is_located(toy_registry, path, key, suggestion):
    data = toy_data()
    node = data
    for part in path:
        node = node[part]
    node[key] = 1
    (problem,) = problems_of(data, toy_registry)
    assert problem.startswith(
        f"{format_path((*path, key))}: unknown key {key!r}; did you mean {suggestion!r}?"
    )


def test_unknown_type_lists_registered_names_and_closest(toy_registry):
    data = toy_data()
    data["loss"]["type"] = "toy_los"
    (problem,) = problems_of(data, toy_registry)
    assert problem == "loss.type: unknown loss 'toy_los'; did you mean 'toy_loss'? Registered: toy_loss"


def test_missing_type_and_non_table(toy_registry):
    data = toy_data()
    del data["optimizer"]["type"]
    data["stages"][1] = "toy_stage"
    problems = problems_of(data, toy_registry)
    assert "optimizer.type: missing; registered optimizer types: toy_sgd" in problems
    assert "stages[1]: expected a table with a 'type' key, got 'toy_stage'" in problems


def test_wrong_value_type_shows_what_was_expected(toy_registry):
    data = toy_data()
    data["loss"]["temperature"] = "hot"
    data["run"]["precision"] = "fp8"
    data["loss"]["reduction"] = "max"
    problems = problems_of(data, toy_registry)
    assert any(
        p.startswith("loss.temperature: Input should be a valid number") and "'hot'" in p for p in problems
    )
    assert any(p.startswith("run.precision: Input should be 'no', 'bf16' or 'fp16'") for p in problems)
    assert any(p.startswith("loss.reduction: Input should be 'mean' or 'sum'") for p in problems)


def test_constraint_violation(toy_registry):
    data = toy_data()
    data["loss"]["temperature"] = 0
    (problem,) = problems_of(data, toy_registry)
    assert problem.startswith("loss.temperature: Input should be greater than 0")


def test_stage_requirements_are_checked(toy_registry):
    data = toy_data()
    del data["loss"]
    problems = problems_of(data, toy_registry)
    assert problems == [
        "stages[0]: stage 'toy_stage' needs [loss], which the recipe does not have",
        "stages[1]: stage 'toy_stage' needs [loss], which the recipe does not have",
    ]


def test_stages_are_required(toy_registry):
    data = toy_data()
    del data["stages"]
    assert "stages: missing; a recipe needs at least one [[stages]] entry" in problems_of(data, toy_registry)


def test_overrides_are_toml_literals(toy_registry):
    recipe = validate_recipe(
        toy_data(),
        registry=toy_registry,
        overrides=[
            "loss.temperature=0.05",
            "loss.reduction=sum",
            "stages[1].value=7",
            "stages.0.value=3.5",
            'run.name="my run"',
            "run.deterministic=true",
        ],
    )
    assert recipe.loss.temperature == 0.05
    assert recipe.loss.reduction == "sum"
    assert [stage.value for stage in recipe.stages] == [3.5, 7.0]
    assert recipe.run.name == "my run" and recipe.run.deterministic is True


def test_override_can_replace_a_whole_component(toy_registry):
    data = toy_data()
    recipe = validate_recipe(
        data, registry=toy_registry, overrides=['loss={type = "toy_loss", temperature = 1.5}']
    )
    assert recipe.loss.temperature == 1.5 and recipe.loss.reduction == "mean"


def test_override_errors_are_validated_and_attributed(toy_registry):
    problems = problems_of(toy_data(), toy_registry, overrides=["loss.temprature=0.3"])
    assert problems == [
        "loss.temprature: unknown key 'temprature'; did you mean 'temperature'? "
        "Allowed keys: type, temperature, reduction [from --set loss.temprature=0.3]"
    ]
    (problem,) = problems_of(toy_data(), toy_registry, overrides=["loss.temperature=cold"])
    assert problem.startswith("loss.temperature: Input should be a valid number") and "[from --set" in problem


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss.temperature", "expected KEY=VALUE"),
        ("stages[9].value=1", "index 9 is out of range (the list has 2 entries)"),
        ("loss.temperature.x=1", "'x' is inside a value that is not a table"),
        ("0.x=1", "must start with a section name"),
    ],
)
def test_bad_override_syntax(toy_registry, override, message):
    (problem,) = problems_of(toy_data(), toy_registry, overrides=[override])
    assert message in problem


def test_resolved_toml_round_trips_with_all_defaults(toy_registry):
    recipe = validate_recipe(toy_data(), registry=toy_registry)
    text = resolved_toml(recipe)
    reread = tomllib.loads(text)
    assert reread["loss"] == {"type": "toy_loss", "temperature": 0.2, "reduction": "mean"}
    assert reread["run"]["precision"] == "no"
    assert validate_recipe(reread, registry=toy_registry) == recipe


def test_stage_keys_number_repeated_types(toy_registry):
    recipe = validate_recipe(toy_data(), registry=toy_registry)
    assert stage_keys(recipe) == ["toy_stage", "toy_stage_2"]


def test_load_recipe_reports_file_and_toml_syntax(tmp_path, toy_registry):
    path = tmp_path / "broken.toml"
    path.write_text("[loss\ntype = 1\n")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry=toy_registry)
    assert str(caught.value).startswith(f"{path}: 1 problem\n  (recipe): not valid TOML:")
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "missing.toml", registry=toy_registry)


def test_error_message_names_the_file(tmp_path, toy_registry):
    path = tmp_path / "r.toml"
    path.write_text(TOY_RECIPE.replace("temperature = 0.2", "temprature = 0.2"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, registry=toy_registry)
    assert str(caught.value).splitlines()[0] == f"{path}: 1 problem"


def test_a_component_table_inside_a_stage_is_checked_with_the_recipe():
    """An evaluation stage's own `data` table (marked ComponentTable("dataset")) is validated with the
    recipe, with its dotted path and the close-match suggestion, not when the stage starts."""
    from contrastive_core import RecipeError, default_registry, validate_recipe

    def recipe(data):
        return {
            "data": {"type": "fashion_mnist", "root": "/nowhere"},
            "model": {"encoder": {"type": "small_cnn"}},
            "stages": [{"type": "knn_eval", "data": data}],
        }

    with pytest.raises(RecipeError) as raised:
        validate_recipe(recipe({"type": "cifar10", "rot": "data/cifar10"}), registry=default_registry())
    problems = {problem.path: problem.message for problem in raised.value.problems}
    assert problems == {
        "stages[0].data.root": "required key is missing",
        "stages[0].data.rot": "unknown key 'rot'; did you mean 'root'? Allowed keys: type, root, download",
    }
    with pytest.raises(RecipeError) as raised:
        validate_recipe(recipe({"type": "cifar11", "root": "x"}), registry=default_registry())
    assert (
        raised.value.problems[0].path == "stages[0].data.type"
        and "cifar10" in raised.value.problems[0].message
    )
    with pytest.raises(RecipeError) as raised:
        validate_recipe(recipe({"root": "x"}), registry=default_registry())
    assert raised.value.problems[0].path == "stages[0].data.type"
    valid = validate_recipe(recipe({"type": "cifar10", "root": "data/cifar10"}), registry=default_registry())
    assert valid.stages[0].data == {"type": "cifar10", "root": "data/cifar10"}


def test_a_directory_or_a_file_with_a_byte_order_mark_is_named_as_such(tmp_path, toy_registry):
    with pytest.raises(RecipeError, match="is a directory; give the recipe's .toml file"):
        load_recipe(tmp_path, registry=toy_registry)
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff".encode() + TOY_RECIPE.encode())
    with pytest.raises(RecipeError, match="byte-order mark"):
        load_recipe(path, registry=toy_registry)
    path.write_bytes(TOY_RECIPE.encode())  # the same recipe without the mark loads
    load_recipe(path, registry=toy_registry)


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/b", "a\\\\b", "", ".hidden", "tab\\there"])
def test_a_run_name_is_one_folder_never_a_path(toy_registry, name):
    data = toy_data()
    data["run"] = {"name": name}
    (problem,) = problems_of(data, toy_registry)
    assert problem.startswith("run.name:")


def test_seeds_are_bounded_by_the_generators_range_and_large_ones_work(toy_registry):
    data = toy_data()
    data["run"] = {"seed": 2**64}
    (problem,) = problems_of(data, toy_registry)
    assert problem.startswith("run.seed:")
    data["run"] = {"seed": 2**64 - 1, "name": "big-seed_1.0"}
    assert validate_recipe(data, registry=toy_registry).run.seed == 2**64 - 1


def test_the_data_order_of_a_huge_seed_does_not_overflow():
    from contrastive_core.engine import GlobalBatchOrder

    order = GlobalBatchOrder(10, 2, 2**64 - 1)
    assert sorted(order.permutation(3).tolist()) == list(range(10))


def test_numbers_and_booleans_are_not_converted_from_other_kinds(toy_registry):
    data = toy_data()
    data["run"]["deterministic"] = 1
    data["augmentations"][0]["p"] = "0.25"
    data["model"]["encoder"]["width"] = "8"
    data["stages"][1]["value"] = 2  # an integer for a float is that float
    assert problems_of(data, toy_registry) == [
        "run.deterministic: expected true or false, got 1; write true",
        'augmentations[0].p: expected a number, got the string "0.25"; write 0.25 without quotes',
        'model.encoder.width: expected an integer, got the string "8"; write 8 without quotes',
    ]
    data = toy_data()
    data["stages"][1]["value"] = 2
    assert validate_recipe(data, registry=toy_registry).stages[1].value == 2.0
    # build() is as strict as a recipe, with the same message.
    with pytest.raises(RecipeError, match=r"width: expected an integer, got 8\.0; write 8"):
        build("encoder", {"type": "toy_encoder", "width": 8.0}, registry=toy_registry)
    assert build("encoder", {"type": "toy_encoder", "width": 8}, registry=toy_registry).params.width == 8
