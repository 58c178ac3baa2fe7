"""The method kind through the engine: every registered method trains, recipes name methods and views.

Registry-wide (as timm tests every model it lists): each method registered in this environment is built
from a recipe holding exactly the sections it requires and trained for 3 steps on the CPU.
"""

from __future__ import annotations

import json
import sys
from typing import ClassVar, Literal

import pytest
import torch
from rich.console import Console

from contrastive_core import (
    ComponentParams,
    Method,
    MethodOutput,
    PluginError,
    RecipeError,
    Registry,
    StepProgress,
    ViewGroup,
    default_registry,
    get_plugin_manager,
    hookimpl,
    validate_recipe,
)
from contrastive_core.engine import (
    build_training_parts,
    run_recipe,
)
from tests.engine.loss_curves import CURVE_THREADS, CURVES, RECIPES, loss_curve
from tests.engine.method_steps import MLP, cpu_training_step, recipe_for
from tests.engine.recipes import tiny_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize("name", default_registry().names("method"))
def test_every_registered_method_trains_three_steps_on_the_cpu(name):
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", name)), registry=registry)
    parts, step = cpu_training_step(recipe, registry)
    before = [p.detach().clone() for p in parts.method.trainable().parameters()]
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    for done in range(3):
        output = step(images, StepProgress(done, 3, 3))
        assert output.loss.ndim == 0 and torch.isfinite(output.loss)
        assert not output.loss.requires_grad
    after = list(parts.method.trainable().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    exported = parts.method.exported_encoder()
    assert exported(torch.rand(2, 1, 28, 28)).shape == (2, exported.feature_dim)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_loss_curves_equal_the_simclr_only_engine(name, tmp_path):
    """The 50-step curves of the fixture written by the SimCLR-only engine, to float rounding."""
    expected = json.loads(CURVES.read_text())[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(CURVE_THREADS)  # the fixture's: CPU kernels sum in an order set by the threads
    try:
        actual = loss_curve(RECIPES[name](), tmp_path / name)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


def test_views_tables_give_the_same_views_as_one_augmentations_list(tmp_path):
    registry = default_registry()
    shared = tomllib.loads(tiny_recipe(epochs=1))
    grouped = {key: value for key, value in shared.items() if key != "augmentations"}
    grouped["views"] = [{"name": "global", "augmentations": shared["augmentations"]}]
    curves = []
    for index, data in enumerate((shared, grouped)):
        recipe = validate_recipe(data, registry=registry)
        run_recipe(recipe, registry=registry, run_dir=tmp_path / str(index), console=Console(quiet=True))
        lines = (tmp_path / str(index) / "pretrain" / "metrics.jsonl").read_text().splitlines()
        curves.append([json.loads(line)["loss"] for line in lines])
    assert curves[0] == curves[1]


# ------------------------------------------------------------------------------ recipe validation


def problems(data: dict) -> list[str]:
    with pytest.raises(RecipeError) as raised:
        validate_recipe(data, registry=default_registry())
    return [str(problem) for problem in raised.value.problems]


def simclr_recipe() -> dict:
    return tomllib.loads(tiny_recipe(epochs=1))


def test_a_recipe_without_a_method_shows_the_new_form():
    data = simclr_recipe()
    del data["method"]
    (problem,) = problems(data)
    assert problem.startswith("stages[0]: stage 'pretrain' needs [method], which the recipe does not have")
    names = ", ".join(default_registry().names("method"))
    assert '[method] type = "simclr"' in problem and f"registered methods: {names})" in problem


def test_sections_a_method_needs_or_ignores_are_reported():
    data = simclr_recipe()
    del data["loss"]
    assert problems(data) == ["loss: missing; method 'simclr' needs [loss]"]
    data = simclr_recipe()
    data["model"]["predictor"] = MLP
    assert problems(data) == ["model.predictor: method 'simclr' does not use [model.predictor]; remove it"]


def test_view_group_mistakes_name_their_path():
    base = simclr_recipe()
    ops = base.pop("augmentations")

    def with_views(*groups: dict, **extra) -> dict:
        return base | {"views": list(groups)} | extra

    assert problems(with_views({"name": "globl", "augmentations": ops})) == [
        "views[0].name: method 'simclr' has no view group 'globl'; its groups: global",
        "views: method 'simclr' needs view group 'global': add a [[views]] table with name = \"global\" "
        "and its [[views.augmentations]]",
    ]
    assert problems(with_views({"name": "global", "count": 3, "augmentations": ops})) == [
        "views[0].count: method 'simclr' trains on 2 'global' views, not 3"
    ]
    assert problems(with_views({"name": "global", "augmentations": ops}, augmentations=ops)) == [
        "augmentations: give either [[augmentations]] (one list for every view) or [[views]] (a list per "
        "view group), not both"
    ]
    one = {"name": "global", "augmentations": ops, "per_view": [{"horizontal_flip": {"p": 1.0}}]}
    assert problems(with_views(one)) == ["views[0].per_view: has 1 tables for 2 views; give one per view"]
    wrong = {"horizontal_flip": {"q": 1.0}}, {"gaussian_blur": {"p": 0.1}}
    assert problems(with_views({"name": "global", "augmentations": ops, "per_view": list(wrong)})) == [
        "views[0].per_view[0].horizontal_flip.q: unknown key 'q'; horizontal_flip has: p",
        "views[0].per_view[1].gaussian_blur: the group's augmentations have no 'gaussian_blur' op; they "
        "are: random_resized_crop, horizontal_flip",
    ]
    typo_key = [{"gaussian_blur": {"sigmaa": [0.1, 2.0]}}, {}]
    blurred = [*ops, {"type": "gaussian_blur"}]
    (problem,) = problems(with_views({"name": "global", "augmentations": blurred, "per_view": typo_key}))
    assert problem.startswith(
        "views[0].per_view[0].gaussian_blur.sigmaa: unknown key 'sigmaa'; did you mean 'sigma'? gaussian_blur has: "
    )
    bad_value = [{"horizontal_flip": {"p": 2.0}}, {}]
    (problem,) = problems(with_views({"name": "global", "augmentations": ops, "per_view": bad_value}))
    assert problem.startswith("views[0].per_view[0].horizontal_flip.p: ")
    typo = with_views({"name": "global", "augmentations": [{"type": "horizontal_flp"}]})
    (problem,) = problems(typo)
    assert problem.startswith("views[0].augmentations[0].type: unknown augmentation 'horizontal_flp'")


def test_per_view_changes_reach_each_view():
    data = simclr_recipe()
    ops = data.pop("augmentations")
    data["views"] = [
        {
            "name": "global",
            "augmentations": ops,
            "per_view": [{"horizontal_flip": {"p": 1.0}}, {"horizontal_flip": {"p": 0.0}}],
        }
    ]
    registry = default_registry()
    recipe = validate_recipe(data, registry=registry)
    from contrastive_core.recipes import resolve_view_groups

    (group,) = resolve_view_groups(recipe, registry)
    assert [view[1].p for view in group.per_view] == [1.0, 0.0]
    assert group.per_view[0][0] == group.per_view[1][0]  # the crop is shared


# ------------------------------------------------------------------------ registration and trainable


class _TwoGroups(Method):
    """A method with two view groups and a target, for checks of the kind itself."""

    name: ClassVar[str] = "two_groups"

    class Params(ComponentParams):
        type: Literal["two_groups"] = "two_groups"

    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2), ViewGroup("global", None))

    def forward(self, views, progress):  # pragma: no cover - never built
        return MethodOutput(torch.zeros(()))


def test_a_method_with_a_bad_definition_is_refused_at_registration():
    class Plugin:
        @hookimpl
        def register_methods(self):
            return [_TwoGroups]

    manager = get_plugin_manager(autoload=False)
    manager.register(Plugin(), name="bad")
    with pytest.raises(PluginError, match="views names a group twice: global, global"):
        Registry.from_plugin_manager(manager)


def test_trainable_excludes_momentum_targets_and_keeps_the_online_order():
    from torch import nn

    from contrastive_core.components import MomentumTarget

    class WithTarget(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(3, 4)
            self.head = nn.Linear(4, 2)
            self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))

    module = WithTarget()
    trainable = Method.trainable(module)
    target_ids = {id(p) for p in module.target.parameters()}
    assert [id(p) for p in trainable.parameters()] == [
        id(p) for p in [*module.encoder.parameters(), *module.head.parameters()]
    ]
    assert not target_ids & {id(p) for p in trainable.parameters()}


# ------------------------------------------------------------------------- review: mistakes caught


def test_simclr_computes_its_loss_outside_the_runs_autocast():
    registry = default_registry()
    recipe = validate_recipe(simclr_recipe(), registry=registry)
    parts = build_training_parts(
        recipe, registry, device=torch.device("cpu"), batch_size=8, total_steps=1, steps_per_epoch=1
    )
    seen = {}

    def spy(module, inputs):
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        seen["dtype"] = inputs[0].dtype

    parts.method.loss.register_forward_pre_hook(spy)
    views = {"global": torch.rand(16, 1, 28, 28)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = parts.method(views, StepProgress(0, 1, 1))
    assert seen == {"autocast": False, "dtype": torch.bfloat16}  # the head's bf16 output, autocast off
    assert output.loss.dtype == torch.float32


def test_a_crop_size_changed_per_view_stops_before_the_first_step(tmp_path):
    data = simclr_recipe()
    ops = data.pop("augmentations")
    data["views"] = [
        {
            "name": "global",
            "augmentations": ops,
            "per_view": [{"random_resized_crop": {"size": 28}}, {"random_resized_crop": {"size": 20}}],
        }
    ]
    registry = default_registry()
    recipe = validate_recipe(data, registry=registry)
    from contrastive_plugins.stages.pretrain import DataDoesNotFitModelError

    with pytest.raises(DataDoesNotFitModelError, match="view group 'global': the views of this group have"):
        run_recipe(recipe, registry=registry, run_dir=tmp_path / "run", console=Console(quiet=True))


class _ExportsSequential(Method):
    """Returns a module that is not an Encoder from exported_encoder."""

    name: ClassVar[str] = "exports_sequential"

    class Params(ComponentParams):
        type: Literal["exports_sequential"] = "exports_sequential"

    def __init__(self, params, parts):
        super().__init__(params, parts)
        self.head = parts.head

    def forward(self, views, progress):  # pragma: no cover - refused before any step
        return MethodOutput(self.head(self.encoder(views["global"])).sum())

    def exported_encoder(self):
        return torch.nn.Sequential(self.encoder)


class _LogsLoss(Method):
    """Returns a metric named like one pretrain logs."""

    name: ClassVar[str] = "logs_loss"

    class Params(ComponentParams):
        type: Literal["logs_loss"] = "logs_loss"

    def __init__(self, params, parts):
        super().__init__(params, parts)
        self.head = parts.head

    def forward(self, views, progress):
        loss = self.head(self.encoder(views["global"])).square().mean()
        return MethodOutput(loss, {"loss": loss.detach()})


def _registry_with(*methods: type[Method]) -> Registry:
    class Plugin:
        @hookimpl
        def register_methods(self):
            return list(methods)

    manager = get_plugin_manager()
    manager.register(Plugin(), name="test_methods")
    return Registry.from_plugin_manager(manager)


def test_methods_that_export_no_encoder_or_reuse_logged_names_stop_with_a_clear_error(tmp_path):
    from contrastive_core import ContrastiveError

    registry = _registry_with(_ExportsSequential, _LogsLoss)
    for name, message in (
        ("exports_sequential", "exported_encoder\\(\\) returned Sequential, not an Encoder"),
        ("logs_loss", "returns a metric named 'loss', which pretrain logs itself"),
    ):
        recipe = validate_recipe(recipe_for(registry.get("method", name)), registry=registry)
        with pytest.raises(ContrastiveError, match=message):
            run_recipe(recipe, registry=registry, run_dir=tmp_path / name, console=Console(quiet=True))


def test_a_predictor_without_a_head_is_refused_at_registration():
    class _PredictorOnly(_TwoGroups):
        name: ClassVar[str] = "predictor_only"
        views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
        requires: ClassVar[tuple[str, ...]] = ("model.predictor",)

        class Params(ComponentParams):
            type: Literal["predictor_only"] = "predictor_only"

    with pytest.raises(PluginError, match="names 'model.predictor' without 'model.head'"):
        _registry_with(_PredictorOnly)


def test_a_view_group_given_twice_flags_the_second_table():
    data = simclr_recipe()
    ops = data.pop("augmentations")
    data["views"] = [
        {"name": "global", "augmentations": ops},
        {"name": "global", "count": 3, "augmentations": ops},
    ]
    assert problems(data) == ["views[1].name: view group 'global' is given twice"]


def test_method_outputs_do_not_share_their_default_metrics():
    with pytest.raises(TypeError):
        MethodOutput(torch.zeros(())).metrics["x"] = torch.zeros(())  # read-only default
    assert dict(MethodOutput(torch.zeros(())).metrics) == {}
