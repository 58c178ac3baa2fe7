"""Shared fixtures: fresh plugin managers and registries, never a global one."""

from __future__ import annotations

import pytest

from contrastive_core import Registry, get_plugin_manager


@pytest.fixture
def toy_registry() -> Registry:
    """A registry holding only the toy plugin (no entry points loaded)."""
    from tests.core import toy_plugin

    manager = get_plugin_manager(autoload=False)
    manager.register(toy_plugin, name="toy")
    return Registry.from_plugin_manager(manager)


@pytest.fixture
def plugin_manager_factory(monkeypatch):
    """Build plugin managers with the environment's plugin switches cleared."""
    monkeypatch.delenv("CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("CONTRASTIVE_BLOCK_PLUGINS", raising=False)
    return get_plugin_manager
