"""Building a plugin manager: the ``contrastive.plugins`` entry point group, blocking, autoload switch.

Nothing is loaded at import time. :func:`get_plugin_manager` builds a fresh manager each call, so tests
and notebooks can load exactly the plugins they want. The built-in SimCLR set is found through the
same entry point group as any third-party package.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from ..errors import closest
from . import hookspecs

ENTRY_POINT_GROUP = "contrastive.plugins"
#: Set to 1 to load no entry-point plugins at all (not even the built-in ones).
DISABLE_AUTOLOAD_ENV = "CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD"
#: Comma-separated plugin names that are not loaded.
BLOCK_ENV = "CONTRASTIVE_BLOCK_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """Where one plugin came from, and why it failed if it did."""

    name: str
    distribution: str | None
    version: str | None
    module: str | None
    error: str | None = None
    blocked: bool = False

    @property
    def origin(self) -> str:
        if self.distribution is None:
            return "registered directly"
        return f"{self.distribution} {self.version}"


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers each plugin's distribution and any load failure."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` (a module or object with hook implementations) under ``name``.

        Raises ``pluggy.PluginValidationError`` for a hook implementation that matches no hook.
        """
        registered = super().register(plugin, name)
        if registered is not None:
            try:
                self._check_hook_names(registered, plugin)
            except pluggy.PluginValidationError:
                pluggy.PluginManager.unregister(self, name=registered)
                raise
        if registered is not None and registered not in self.infos:
            module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__qualname__
            self.infos[registered] = PluginInfo(registered, None, None, module)
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> object | None:
        name = name or (self.get_name(plugin) if plugin is not None else None)
        removed = super().unregister(plugin, name)
        if name is not None:
            self.infos.pop(name, None)
        return removed

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Import and register every plugin of ``group``; a failing plugin is recorded, not raised."""
        for entry_point in sorted(entry_points(group=group), key=lambda ep: ep.name):
            dist = entry_point.dist
            info = PluginInfo(
                name=entry_point.name,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
                module=entry_point.value,
            )
            if self.is_blocked(entry_point.name):
                self.infos[entry_point.name] = _replace(info, blocked=True)
                continue
            if self.get_plugin(entry_point.name) is not None:
                continue
            try:
                plugin = entry_point.load()
                self.register(plugin, name=entry_point.name)
            # SystemExit too: a plugin calling sys.exit() while imported must not end every command silently.
            except (Exception, SystemExit) as error:  # noqa: BLE001 - a broken plugin must not stop the others
                if self.get_plugin(entry_point.name) is not None:
                    pluggy.PluginManager.unregister(self, name=entry_point.name)
                self.infos[entry_point.name] = _replace(info, error=_describe(error))
                continue
            self.infos[entry_point.name] = info

    def _check_hook_names(self, name: str, plugin: object) -> None:
        """Reject hook implementations that match no hook (a typo such as ``register_loss``), suggesting
        the closest hook: pluggy itself would accept the typo and never call it."""
        hooks = sorted(n for n in dir(hookspecs) if n.startswith("register_"))
        for caller in self.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                suggestion = closest(caller.name, hooks)
                hint = f"; did you mean {suggestion!r}?" if suggestion else "."
                raise pluggy.PluginValidationError(
                    plugin,
                    f"plugin {name!r} implements unknown hook {caller.name!r}{hint} Hooks are: {', '.join(hooks)}",
                )

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.error is not None]


def _replace(info: PluginInfo, **changes: object) -> PluginInfo:
    return PluginInfo(**{**info.__dict__, **changes})


def _describe(error: BaseException) -> str:
    """One line naming the exception and where in the plugin it was raised."""
    if isinstance(error, pluggy.PluginValidationError):
        return str(error)  # raised by this manager's own checks: the message says it all, the place nothing
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r}) while being imported{where}"
    return f"{type(error).__name__}: {error}{where}"


def blocked_from_env() -> list[str]:
    return [name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()]


def autoload_enabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


def get_plugin_manager(*, autoload: bool | None = None, blocked: Iterable[str] = ()) -> PluginManager:
    """A fresh plugin manager with the ``contrastive.plugins`` entry points loaded.

    ``autoload=None`` follows ``CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD``; ``blocked`` names plugins not to
    load, in addition to those in ``CONTRASTIVE_BLOCK_PLUGINS``. Register more plugins with
    ``pm.register(module_or_object, name=...)``.
    """
    manager = PluginManager()
    for name in [*blocked, *blocked_from_env()]:
        manager.set_blocked(name)
    if autoload is None:
        autoload = autoload_enabled()
    if autoload:
        manager.load_entry_points()
    return manager
