"""Fixtures of the evaluation-stage tests: a registry with the built-in plugins and a synthetic dataset,
exported encoders, and a helper that runs a recipe."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from contrastive_core import Registry, build, get_plugin_manager, validate_recipe
from contrastive_core.engine import export_encoder, run_recipe

FASHION = Path(__file__).resolve().parents[1] / "fixtures" / "fashion_mnist" / "plain"
#: A tiny encoder: the fixture runs take fractions of a second.
TINY_ENCODER = {"type": "small_cnn", "in_channels": 1, "widths": [4], "feature_dim": 8}


@pytest.fixture(scope="session")
def registry() -> Registry:
    from contrastive_plugins.datasets import plugin as datasets
    from contrastive_plugins.simclr import plugin as simclr
    from contrastive_plugins.stages import plugin as stages
    from tests.stages import synthetic_dataset

    manager = get_plugin_manager(autoload=False)
    for name, module in [
        ("simclr", simclr),
        ("datasets", datasets),
        ("stages", stages),
        ("synthetic", synthetic_dataset),
    ]:
        manager.register(module, name=name)
    return Registry.from_plugin_manager(manager)


def export_random_encoder(registry: Registry, directory: Path, seed: int, params: dict | None = None) -> Path:
    """Export an encoder initialised from ``seed`` (stands for a pretrained one) into ``directory``."""
    torch.manual_seed(seed)
    encoder = build("encoder", params or TINY_ENCODER, registry=registry)
    export_encoder(encoder, directory)
    return directory


@pytest.fixture
def exported(registry, tmp_path) -> Path:
    """An exported tiny encoder, different from the seed-0 random initialisation."""
    return export_random_encoder(registry, tmp_path / "exported", seed=123)


def fashion_data() -> dict[str, Any]:
    return {"type": "fashion_mnist", "root": str(FASHION)}


def recipe(
    *stages: dict[str, Any], data: dict | None = None, with_model: bool = False, **sections: Any
) -> dict:
    """A recipe dict over the Fashion-MNIST fixture (64 train, 32 test images) with ``stages``."""
    result: dict[str, Any] = {"run": {"seed": 0, "device": "cpu"}, "stages": list(stages), **sections}
    result["data"] = data if data is not None else fashion_data()
    if with_model:
        result["model"] = {"encoder": dict(TINY_ENCODER)}
    return result


def run(registry: Registry, recipe_data: dict, run_dir: Path) -> tuple[dict, str]:
    """Run ``recipe_data`` into ``run_dir``; returns (results, console output)."""
    validated = validate_recipe(recipe_data, registry=registry)
    output = io.StringIO()
    console = Console(file=output, width=200)
    results = run_recipe(
        validated, registry=registry, run_dir=run_dir, console=console, command_line=["test"]
    )
    return results, output.getvalue()
