"""The plugin machinery: hooks, the plugin manager, the registry of components, and building one.

* :mod:`.hookspecs`: one registration hook per component kind, and the :data:`hookimpl` marker;
* :mod:`.plugin_manager`: loading the ``contrastive.plugins`` entry points (blocking, autoload switch);
* :mod:`.kinds`: the table of component kinds (base class, hook, plural);
* :mod:`.registry`: name -> class per kind, built from a plugin manager and checked;
* :mod:`.build`: making a component from a params dict;
* :mod:`.validation_problems`: pydantic's errors as problems with dotted paths, shared by
  :func:`build` and recipe validation.
"""

from __future__ import annotations

from .build import build
from .hookspecs import PROJECT_NAME, hookimpl, hookspec
from .kinds import KINDS, KindSpec, UnknownKindError, kind_spec
from .plugin_manager import (
    BLOCK_ENV,
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    PluginInfo,
    PluginManager,
    autoload_enabled,
    blocked_from_env,
    get_plugin_manager,
)
from .registry import Registration, Registry, default_registry, undocumented_fields
from .validation_problems import format_path, problems_from_validation_error, show_value

__all__ = [
    "BLOCK_ENV",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "PROJECT_NAME",
    "KindSpec",
    "PluginInfo",
    "PluginManager",
    "Registration",
    "Registry",
    "UnknownKindError",
    "autoload_enabled",
    "blocked_from_env",
    "build",
    "default_registry",
    "format_path",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "kind_spec",
    "problems_from_validation_error",
    "show_value",
    "undocumented_fields",
]
