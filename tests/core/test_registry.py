"""The registry and plugin manager: duplicates, blocking, autoload, broken plugins, bad components."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from typing import Literal

import pytest
from pydantic import Field

from contrastive_core import (
    ComponentParams,
    Loss,
    PluginError,
    Registry,
    UnknownComponentError,
    build,
    get_plugin_manager,
    hookimpl,
)
from contrastive_core.registration import plugin_manager as plugin_manager_module
from tests.core import toy_plugin


class OtherToyLossPlugin:
    """A second plugin registering a loss under the toy plugin's name."""

    @hookimpl
    def register_losses(self):
        class ClashingParams(ComponentParams):
            type: Literal["toy_loss"]

        class Clashing(Loss):
            """Same name as the toy loss."""

            name = "toy_loss"
            Params = ClashingParams

            def forward(self, z_a, z_b):
                return z_a.sum()

        return [Clashing]


def registry_with(*plugins, strict=True) -> Registry:
    manager = get_plugin_manager(autoload=False)
    for name, plugin in plugins:
        manager.register(plugin, name=name)
    return Registry.from_plugin_manager(manager, strict=strict)


def test_toy_plugin_registers_every_kind(toy_registry):
    for kind, name in [
        ("augmentation", "toy_flip"),
        ("encoder", "toy_encoder"),
        ("head", "toy_head"),
        ("loss", "toy_loss"),
        ("optimizer", "toy_sgd"),
        ("scheduler", "toy_constant"),
        ("dataset", "toy_data"),
        ("stage", "toy_stage"),
    ]:
        assert toy_registry.names(kind) == [name]
        assert toy_registry.registration(kind, name).plugin == "toy"


def test_duplicate_name_is_an_error_naming_both_plugins():
    with pytest.raises(PluginError) as caught:
        registry_with(("toy", toy_plugin), ("other", OtherToyLossPlugin()))
    message = str(caught.value)
    assert "loss 'toy_loss' is registered twice: by plugin 'toy'" in message
    assert "and by plugin 'other'" in message
    assert "--block NAME" in message


def test_blocking_the_duplicate_lets_the_rest_load():
    manager = get_plugin_manager(autoload=False, blocked=["other"])
    manager.register(toy_plugin, name="toy")
    assert manager.register(OtherToyLossPlugin(), name="other") is None  # pluggy refuses blocked names
    registry = Registry.from_plugin_manager(manager)
    assert registry.names("loss") == ["toy_loss"]


def test_unknown_component_suggests(toy_registry):
    with pytest.raises(UnknownComponentError, match=r"did you mean 'toy_loss'\? Registered: toy_loss"):
        toy_registry.get("loss", "toyloss")


def test_build_validates_params_and_passes_context(toy_registry):
    loss = build("loss", {"type": "toy_loss", "temperature": 2.0}, registry=toy_registry)
    assert loss.params.temperature == 2.0
    head = build("head", {"type": "toy_head", "out_dim": 3}, registry=toy_registry, in_dim=5)
    assert head.linear.in_features == 5 and head.out_dim == 3
    from contrastive_core import RecipeError

    with pytest.raises(RecipeError, match=r"temperature: Input should be greater than 0"):
        build("loss", {"type": "toy_loss", "temperature": -1}, registry=toy_registry)
    with pytest.raises(RecipeError, match=r"type: missing; registered: toy_loss"):
        build("loss", {"temperature": 1}, registry=toy_registry)


def _fake_entry_points(monkeypatch, *entries: EntryPoint) -> None:
    monkeypatch.setattr(plugin_manager_module, "entry_points", lambda group: list(entries))


def test_plugin_failing_on_import_is_reported_and_others_load(monkeypatch, plugin_manager_factory):
    _fake_entry_points(
        monkeypatch,
        EntryPoint("broken", "tests.core.raises_on_import", "contrastive.plugins"),
        EntryPoint("toy", "tests.core.toy_plugin", "contrastive.plugins"),
    )
    manager = plugin_manager_factory()
    registry = Registry.from_plugin_manager(manager, strict=False)
    assert registry.names("loss") == ["toy_loss"]
    (problem,) = registry.problems
    assert problem.startswith(
        "plugin 'broken' (registered directly) failed to load: ImportError: this plugin needs"
    )
    assert "raises_on_import.py" in problem
    with pytest.raises(PluginError, match="plugin 'broken'"):
        Registry.from_plugin_manager(manager)
    # Blocking it makes everything else usable.
    blocked = plugin_manager_factory(blocked=["broken"])
    assert Registry.from_plugin_manager(blocked).names("loss") == ["toy_loss"]
    assert blocked.infos["broken"].blocked


def test_block_and_autoload_environment_variables(monkeypatch, plugin_manager_factory):
    _fake_entry_points(monkeypatch, EntryPoint("toy", "tests.core.toy_plugin", "contrastive.plugins"))
    assert plugin_manager_factory().get_plugin("toy") is toy_plugin
    monkeypatch.setenv("CONTRASTIVE_BLOCK_PLUGINS", "other, toy")
    assert plugin_manager_factory().get_plugin("toy") is None
    monkeypatch.delenv("CONTRASTIVE_BLOCK_PLUGINS")
    monkeypatch.setenv("CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD", "1")
    manager = plugin_manager_factory()
    assert manager.get_plugins() == set() and manager.infos == {}
    assert plugin_manager_factory(autoload=True).get_plugin("toy") is toy_plugin


def test_misspelled_hook_name_fails_the_plugin(monkeypatch, plugin_manager_factory):
    _fake_entry_points(
        monkeypatch, EntryPoint("typo", "tests.core.test_registry:TypoPlugin", "contrastive.plugins")
    )
    manager = plugin_manager_factory()
    (failure,) = manager.failures
    assert "implements unknown hook 'register_loss'; did you mean 'register_losses'?" in failure.error
    assert manager.get_plugin("typo") is None


def test_a_plugin_module_with_a_misspelled_hook_is_refused_naming_the_hook_meant(
    monkeypatch, plugin_manager_factory
):
    _fake_entry_points(
        monkeypatch,
        EntryPoint("typo", "tests.core.misspelled_hook", "contrastive.plugins"),
        EntryPoint("toy", "tests.core.toy_plugin", "contrastive.plugins"),
    )
    registry = Registry.from_plugin_manager(plugin_manager_factory(), strict=False)
    (problem,) = registry.problems
    assert problem.startswith("plugin 'typo' (registered directly) failed to load: ")
    assert "unknown hook 'register_encoder'; did you mean 'register_encoders'? Hooks are: " in problem
    assert problem.endswith(
        "register_stages"
    )  # no '(at ...)': the place is contrastive's check, not the plugin
    assert registry.names("loss") == ["toy_loss"]  # the other plugins still load


def test_an_unknown_hook_far_from_every_hook_lists_them_without_a_guess():
    class Unrelated:
        @hookimpl
        def on_epoch_end(self):
            return None

    import pluggy

    manager = get_plugin_manager(autoload=False)
    with pytest.raises(
        pluggy.PluginValidationError,
        match=r"unknown hook 'on_epoch_end'\. Hooks are: register_augmentations, ",
    ):
        manager.register(Unrelated(), name="unrelated")


class TypoPlugin:
    @staticmethod
    @hookimpl
    def register_loss():
        return []


class RaisingPlugin:
    @hookimpl
    def register_losses(self):
        raise RuntimeError("cannot build my losses")


def test_plugin_raising_in_a_hook_is_named():
    registry = registry_with(("toy", toy_plugin), ("raising", RaisingPlugin()), strict=False)
    assert registry.problems == [
        "plugin 'raising' (registered directly) raised in register_losses(): RuntimeError: cannot build my losses"
    ]
    assert registry.names("loss") == ["toy_loss"]


class _Undocumented(ComponentParams):
    type: Literal["undocumented"]
    x: int = 1


class _WrongLiteral(ComponentParams):
    type: Literal["something_else"]


class _Documented(ComponentParams):
    type: Literal["fine"]
    x: float = Field(1.0, gt=0)
    """Documented."""


def _loss_class(name, params, abstract=False):
    namespace = {"name": name, "Params": params, "__doc__": "A loss."}
    if not abstract:
        namespace["forward"] = lambda self, z_a, z_b: z_a.sum()
    return type(f"Loss_{name}", (Loss,), namespace)


@pytest.mark.parametrize(
    ("component", "message"),
    [
        (object, "is not a subclass of contrastive_core.Loss"),
        (_loss_class("Bad Name", _Documented), "name must be a lowercase identifier"),
        (_loss_class("mismatch", _WrongLiteral), "must declare `type: Literal['mismatch']`"),
        (_loss_class("fine", _Documented, abstract=True), "does not implement: forward"),
        (_loss_class("fine", dict), "Params must be a subclass of contrastive_core.ComponentParams"),
    ],
)
def test_bad_components_are_refused_with_a_reason(component, message):
    class BadPlugin:
        @hookimpl
        def register_losses(self):
            return [component]

    registry = registry_with(("bad", BadPlugin()), strict=False)
    (problem,) = registry.problems
    assert problem.startswith("plugin 'bad' (registered directly), register_losses(): ")
    assert message in problem
    assert registry.names("loss") == []


def test_a_component_with_undescribed_params_is_registered_with_a_warning():
    class UndocumentedPlugin:
        @hookimpl
        def register_losses(self):
            return [_loss_class("undocumented", _Undocumented)]

    registry = registry_with(("third_party", UndocumentedPlugin()))  # strict: a warning is no problem
    assert registry.names("loss") == ["undocumented"]
    assert registry.problems == []
    assert registry.warnings == [
        "plugin 'third_party' (registered directly), register_losses(): Loss_undocumented.Params fields "
        "have no description (write a docstring under each field): x"
    ]
    assert registry_with(("toy", toy_plugin)).warnings == []


def test_registering_a_misspelled_hook_directly_is_refused():
    import pluggy

    manager = get_plugin_manager(autoload=False)
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'register_loss'"):
        manager.register(TypoPlugin, name="typo")
    assert manager.get_plugin("typo") is None and "typo" not in manager.infos


def test_a_plugin_calling_sys_exit_on_import_is_reported_and_others_load(monkeypatch, plugin_manager_factory):
    _fake_entry_points(
        monkeypatch,
        EntryPoint("quits", "tests.core.exits_on_import", "contrastive.plugins"),
        EntryPoint("toy", "tests.core.toy_plugin", "contrastive.plugins"),
    )
    registry = Registry.from_plugin_manager(plugin_manager_factory(), strict=False)
    assert registry.names("loss") == ["toy_loss"]
    (problem,) = registry.problems
    assert problem.startswith("plugin 'quits' (registered directly) failed to load: called sys.exit(3)")
    assert "exits_on_import.py" in problem


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("class", "register_losses() returned ToyLoss, not a list of classes; return [ToyLoss]"),
        ("string", "register_losses() returned a str, not a list of classes"),
        ("exit", "raised in register_losses(): SystemExit: 4"),
    ],
)
def test_a_hook_returning_something_else_than_a_list_names_the_plugin(returned, message):
    from tests.core.toy_plugin import ToyLoss

    class OddPlugin:
        @hookimpl
        def register_losses(self):
            if returned == "exit":
                sys.exit(4)
            return ToyLoss if returned == "class" else "ToyLoss"

    registry = registry_with(("odd", OddPlugin()), strict=False)
    (problem,) = registry.problems
    assert problem.startswith("plugin 'odd' (registered directly)")
    assert message in problem
