"""A registry holding only the built-in dataset plugin, and a shortcut to build datasets from it."""

from __future__ import annotations

import pytest

import contrastive_core
import contrastive_plugins.datasets.plugin


@pytest.fixture(scope="session")
def dataset_registry() -> contrastive_core.Registry:
    manager = contrastive_core.get_plugin_manager(autoload=False)
    manager.register(contrastive_plugins.datasets.plugin, name="datasets")
    return contrastive_core.Registry.from_plugin_manager(manager)


@pytest.fixture
def make_dataset(dataset_registry):
    """``make_dataset(type="cifar10", root=...)`` builds the dataset component from params."""

    def make(**params):
        return contrastive_core.build("dataset", params, registry=dataset_registry)

    return make
