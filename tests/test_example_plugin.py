"""A real third-party plugin package, pip-installed into this environment, found through its entry point.

The package in tests/example_plugin is built and installed with pip (offline: no index, no build
isolation), then used by the real ``contrastive`` command in a recipe; it is uninstalled afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.engine.recipes import tiny_recipe

PACKAGE = Path(__file__).parent / "example_plugin"
BIN = Path(sys.executable).parent


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def installed_example_plugin(tmp_path_factory):
    source = tmp_path_factory.mktemp("src") / "example_plugin"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(source))
    yield
    pip("uninstall", "-y", "-q", "contrastive-example-plugin")


def contrastive(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(BIN / "contrastive"), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_listed_with_its_distribution_and_components(installed_example_plugin):
    result = contrastive("plugins")
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if "contrastive_example_plugin.plugin" in line)
    assert "example" in row and "contrastive-example-plugin 0.1.0" in row
    assert "loss: decoupled_contrastive" in result.stdout
    assert "random_cutout" in result.stdout
    listing = contrastive("list", "loss")
    assert "decoupled_contrastive" in listing.stdout and "Temperature tau dividing" in listing.stdout


def test_used_in_a_recipe_by_the_real_command(installed_example_plugin, tmp_path):
    text = tiny_recipe(epochs=1, loss='type = "decoupled_contrastive"\ntemperature = 0.2')
    text = text.replace(
        "[model.encoder]",
        '[[augmentations]]\ntype = "random_cutout"\nsize_fraction = 0.3\n\n[model.encoder]',
    )
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text)
    result = contrastive("run", str(recipe), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    resolved = (tmp_path / "run" / "recipe.resolved.toml").read_text()
    assert 'type = "decoupled_contrastive"' in resolved and 'type = "random_cutout"' in resolved
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert {
        "name": "example",
        "distribution": "contrastive-example-plugin",
        "version": "0.1.0",
        "module": "contrastive_example_plugin.plugin",
    } in manifest["plugins"]
    # Blocked, its components are unknown names again.
    blocked = contrastive("--block", "example", "validate", str(recipe))
    assert blocked.returncode == 2
    assert "loss.type: unknown loss 'decoupled_contrastive'" in blocked.stderr


def test_its_loss_matches_a_direct_computation(installed_example_plugin):
    from contrastive_core import Registry, build, get_plugin_manager

    registry = Registry.from_plugin_manager(get_plugin_manager())
    loss = build("loss", {"type": "decoupled_contrastive", "temperature": 0.3}, registry=registry)
    torch.manual_seed(0)
    z_a, z_b = torch.randn(5, 4), torch.randn(5, 4)
    z = F.normalize(torch.cat([z_a, z_b]), dim=1).double()
    total = 0.0
    for i in range(10):
        j = (i + 5) % 10
        sims = [float(z[i] @ z[k]) / 0.3 for k in range(10)]
        negatives = sum(torch.exp(torch.tensor(sims[k])) for k in range(10) if k not in (i, j))
        total += -sims[j] + float(torch.log(negatives))
    torch.testing.assert_close(
        loss(z_a, z_b).double(), torch.tensor(total / 10, dtype=torch.float64), rtol=1e-5, atol=1e-6
    )
