"""Broken third-party plugins, pip-installed: a clear error naming each, and blocking them lets a real run
finish.

One distribution provides three ``contrastive.plugins`` entry points, one per fault. It is installed
with pip (offline, no build isolation) into a private ``--target`` folder that only these tests put on
``sys.path`` / ``PYTHONPATH``: the broken plugins never reach the shared environment, so other test
processes running at the same time are not affected, and nothing needs uninstalling.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.recipes import tiny_recipe
from tests.reliability.cases import BROKEN_PLUGINS
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import BIN, ENV, contrastive_in_process

PACKAGE = "reliability_broken_plugins"
SOURCES = {
    "pyproject.toml": f"""
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "contrastive-reliability-broken-plugins"
version = "0.1.0"

[project.entry-points."contrastive.plugins"]
reliability_raises = "{PACKAGE}.raises_on_import"
reliability_bad_component = "{PACKAGE}.bad_component"
reliability_duplicate = "{PACKAGE}.duplicate_name"

[tool.setuptools]
packages = ["{PACKAGE}"]
""",
    f"{PACKAGE}/__init__.py": '"""Plugins broken on purpose, for the reliability tests of contrastive."""\n',
    f"{PACKAGE}/raises_on_import.py": '''"""Fails when imported, as a plugin with a missing dependency does."""

raise ImportError("needs the package not_installed_anywhere")
''',
    f"{PACKAGE}/bad_component.py": '''"""Registers a loss renamed without its params' ``type`` (the registry requires the two to match)."""

from typing import Literal

from contrastive_core import ComponentParams, Loss, hookimpl


class RenamedParams(ComponentParams):
    type: Literal["old_loss_name"]
    scale: float = 1.0
    """Factor on the squared distance."""


class RenamedLoss(Loss):
    """Squared distance between the views, scaled."""

    name = "renamed_loss"
    Params = RenamedParams

    def forward(self, z_a, z_b):
        return (z_a - z_b).square().mean() * self.params.scale


@hookimpl
def register_losses():
    return [RenamedLoss]
''',
    f"{PACKAGE}/duplicate_name.py": '''"""Registers a second loss under the built-in name nt_xent."""

from typing import Literal

from contrastive_core import ComponentParams, Loss, hookimpl


class ImpostorParams(ComponentParams):
    type: Literal["nt_xent"]
    temperature: float = 0.5
    """Unused."""


class Impostor(Loss):
    """Not NT-Xent."""

    name = "nt_xent"
    Params = ImpostorParams

    def forward(self, z_a, z_b):
        return z_a.sum() * 0


@hookimpl
def register_losses():
    return [Impostor]
''',
}
NAMES = [case.plugin for case in BROKEN_PLUGINS]
# The contrastive.plugins entry points a process finds, one name per line.
DISCOVERED = (
    "from importlib.metadata import entry_points\n"
    "print('\\n'.join(e.name for e in entry_points(group='contrastive.plugins')))"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The folder pip installed the broken plugin distribution into."""
    source = tmp_path_factory.mktemp("broken_plugins_src")
    for name, text in SOURCES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    target = tmp_path_factory.mktemp("broken_plugins_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps"]
        + ["--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    assert (target / PACKAGE / "raises_on_import.py").is_file()
    return target


@pytest.fixture
def on_path(installed, monkeypatch) -> Iterator[Path]:
    """The broken plugins visible to this process's entry point discovery, for one test."""
    monkeypatch.syspath_prepend(str(installed))
    yield installed
    for module in [name for name in sys.modules if name.startswith(PACKAGE)]:
        del sys.modules[module]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "recipe.toml"
    path.write_text(tiny_recipe(epochs=1))
    return path


@pytest.mark.parametrize("case", mark_suite(BROKEN_PLUGINS))
def test_a_broken_plugin_is_named_in_a_clear_error(case, on_path, recipe):
    others = [arg for name in NAMES if name != case.plugin for arg in ("--block", name)]
    finished = contrastive_in_process(*others, "validate", str(recipe))
    assert finished.returncode == 2, finished.stdout
    error = " ".join(finished.stderr.split())
    assert f"plugin '{case.plugin}'" in error and case.message in error, error
    assert "contrastive-reliability-broken-plugins 0.1.0" in error  # the distribution to fix or remove
    assert "--block NAME" in error
    assert "Traceback" not in finished.stderr


def test_blocking_the_broken_plugins_lets_a_real_run_finish(installed, recipe, tmp_path):
    env = {
        **ENV,
        "PYTHONPATH": os.pathsep.join([str(installed), ENV.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    # The broken plugins are there for a process with this environment (so blocking them is what works).
    found = subprocess.run(
        [sys.executable, "-c", DISCOVERED], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert set(NAMES) <= set(found)
    blocked = [arg for name in NAMES for arg in ("--block", name)]
    finished = subprocess.run(
        [str(BIN / "contrastive"), *blocked, "run", str(recipe), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert (tmp_path / "run" / "pretrain" / "encoder.safetensors").is_file()
