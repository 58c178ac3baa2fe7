"""The registry: one flat table per component kind, name -> class, built from a plugin manager.

Building it calls every registration hook of every plugin once, checks each returned class (right base
class, a ``name``, a params model with ``type: Literal[name]`` and ``extra="forbid"``) and refuses a name
registered twice in one kind, naming both plugins. A params field without a description is no reason
to refuse a third party's component (it works; only ``contrastive list`` has less to say about it): it
is registered, and the registry's ``warnings`` name the fields. The built-in plugins are held to
describing every field by a meta-test instead.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from functools import cache

from ..components.component import Component, ComponentParams
from ..errors import PluginError, UnknownComponentError
from .kinds import KINDS, kind_spec
from .plugin_manager import PluginInfo, PluginManager, get_plugin_manager

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Registration:
    """A registered component class and the plugin that registered it."""

    cls: type[Component]
    plugin: str
    info: PluginInfo

    @property
    def origin(self) -> str:
        return f"plugin {self.plugin!r} ({self.info.origin})"


class Registry:
    """Registered component classes by kind; also the plugins that were loaded, any problems (what could
    not be registered) and warnings (what was registered but falls short, e.g. undescribed params)."""

    def __init__(
        self,
        entries: dict[str, dict[str, Registration]],
        plugins: list[PluginInfo],
        problems: list[str],
        warnings: list[str] | None = None,
    ) -> None:
        self._entries = entries
        self.plugins = plugins
        self.problems = problems
        self.warnings = warnings or []

    @classmethod
    def from_plugin_manager(cls, manager: PluginManager, *, strict: bool = True) -> Registry:
        """Collect every plugin's components. With ``strict``, any problem raises :class:`PluginError`
        (warnings never do)."""
        warnings: list[str] = []
        problems = [
            f"plugin {info.name!r} ({info.origin}) failed to load: {info.error}" for info in manager.failures
        ]
        entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        for spec in KINDS.values():
            for impl in getattr(manager.hook, spec.hook).get_hookimpls():
                info = manager.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, None, None, None)
                try:
                    returned = impl.function()
                except (Exception, SystemExit) as error:  # noqa: BLE001 - attribute the failure to its plugin
                    problems.append(
                        f"plugin {impl.plugin_name!r} ({info.origin}) raised in {spec.hook}(): "
                        f"{type(error).__name__}: {error}"
                    )
                    continue
                if returned is not None and not isinstance(returned, list | tuple):
                    problems.append(
                        f"plugin {impl.plugin_name!r} ({info.origin}), {spec.hook}() returned "
                        f"{_shown(returned)}, not a list of classes; return [{_shown(returned)}]"
                        if isinstance(returned, type)
                        else f"plugin {impl.plugin_name!r} ({info.origin}), {spec.hook}() returned "
                        f"{_shown(returned)}, not a list of classes"
                    )
                    continue
                for component in returned or []:
                    problem = _check_component(component, spec.name, spec.base)
                    if problem:
                        problems.append(
                            f"plugin {impl.plugin_name!r} ({info.origin}), {spec.hook}(): {problem}"
                        )
                        continue
                    registration = Registration(component, impl.plugin_name, info)
                    existing = entries[spec.name].get(component.name)
                    if existing is not None:
                        problems.append(
                            f"{spec.name} {component.name!r} is registered twice: by {existing.origin} "
                            f"and by {registration.origin}"
                        )
                        continue
                    entries[spec.name][component.name] = registration
                    if undocumented := undocumented_fields(component):
                        warnings.append(
                            f"plugin {impl.plugin_name!r} ({info.origin}), {spec.hook}(): "
                            f"{component.__qualname__}.Params fields have no description (write a "
                            f"docstring under each field): {', '.join(undocumented)}"
                        )
        if strict and problems:
            raise PluginError(problems)
        plugins = sorted(manager.infos.values(), key=lambda info: info.name)
        return cls(entries, plugins, problems, warnings)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind_spec(kind).name])

    def registrations(self, kind: str) -> list[Registration]:
        entries = self._entries[kind_spec(kind).name]
        return [entries[name] for name in sorted(entries)]

    def get(self, kind: str, name: str) -> type[Component]:
        """The class registered as ``name`` in ``kind``; unknown names suggest the closest match."""
        spec = kind_spec(kind)
        try:
            return self._entries[spec.name][name].cls
        except (KeyError, TypeError):
            raise UnknownComponentError(spec.name, name, self._entries[spec.name]) from None

    def registration(self, kind: str, name: str) -> Registration:
        self.get(kind, name)
        return self._entries[kind_spec(kind).name][name]


def _shown(value: object) -> str:
    """A short name for what a hook returned: a class's name, else the value's type."""
    return value.__name__ if isinstance(value, type) else f"a {type(value).__name__}"


def _check_component(component: object, kind: str, base: type) -> str | None:
    """Why ``component`` cannot be registered as a ``kind``, or None if it can."""
    if not (inspect.isclass(component) and issubclass(component, base)):
        return f"{component!r} is not a subclass of contrastive_core.{base.__name__}"
    label = component.__qualname__
    name = getattr(component, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        return f"{label}.name must be a lowercase identifier such as 'nt_xent', got {name!r}"
    if inspect.isabstract(component):
        missing = ", ".join(sorted(component.__abstractmethods__))
        return f"{label} ({name!r}) does not implement: {missing}"
    params = getattr(component, "Params", None)
    if not (inspect.isclass(params) and issubclass(params, ComponentParams)):
        return f"{label}.Params must be a subclass of contrastive_core.ComponentParams"
    type_field = params.model_fields.get("type")
    if (
        type_field is None
        or typing.get_origin(type_field.annotation) is not typing.Literal
        or typing.get_args(type_field.annotation) != (name,)
    ):
        return f"{label}.Params must declare `type: Literal[{name!r}]`"
    if params.model_config.get("extra") != "forbid":
        return f"{label}.Params must forbid unknown keys (model_config extra='forbid')"
    definition_problem = getattr(component, "definition_problem", None)
    if definition_problem is not None and (problem := definition_problem()):
        return problem
    return None


def undocumented_fields(component: type[Component]) -> list[str]:
    """The params fields of a (checked) component class that have no description, ``type`` aside."""
    fields = component.Params.model_fields
    return [name for name, info in fields.items() if name != "type" and not info.description]


@cache
def default_registry() -> Registry:
    """The registry of the plugins the environment provides (entry points, env blocks), built once.

    Used by :func:`contrastive_core.build` when no registry is passed; call
    ``default_registry.cache_clear()`` after installing a plugin in a running interpreter.
    """
    return Registry.from_plugin_manager(get_plugin_manager())
