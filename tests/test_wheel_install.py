"""The package as a user gets it: a wheel built offline and installed into a fresh virtual environment.

The wheel is built from a copy of the files a build reads (so no build/ or egg-info folder appears in
the checkout) with pip, offline and without build isolation. The new environment has no pip and none of
the dependencies of its own: a ``.pth`` file puts this environment's site-packages after its own, so
torch and the rest are reused while ``contrastive_core``, ``contrastive_plugins``, their metadata and
the ``contrastive`` script come from the wheel (its site-packages is searched first). The installed
command then lists the shipped recipes, copies one out, validates it and runs it, shortened.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What building the wheel reads: pyproject.toml names the readme, the license and these folders.
BUILD_INPUTS = ["pyproject.toml", "README.md", "LICENSE", "contrastive_core", "plugins", "recipes"]
FIXTURE = ROOT / "tests" / "fixtures" / "fashion_mnist" / "gzip"
RECIPES = sorted(path.name for path in (ROOT / "recipes").glob("*.toml"))


def _checked(
    *command: str | Path, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run ``command``; it must succeed (the failure shows the end of its output)."""
    finished = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert finished.returncode == 0, f"{command}:\n{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}"
    return finished


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _checked(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", dist, source)
    (built,) = dist.glob("contrastive-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """The bin folder of a fresh environment with the wheel installed."""
    root = tmp_path_factory.mktemp("venv")
    _checked(sys.executable, "-m", "venv", "--without-pip", root)
    own = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    (own / "reuse_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = root / "bin" / "python"
    _checked(
        python, "-m", "pip", "--disable-pip-version-check", "install", "--no-deps", "--no-index", "-q", wheel
    )
    return root / "bin"


def _env() -> dict[str, str]:
    drop = ("PYTHONPATH", "CONTRASTIVE_BLOCK_PLUGINS", "CONTRASTIVE_DISABLE_PLUGIN_AUTOLOAD")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "OMP_NUM_THREADS": "1"}


def test_the_wheel_carries_the_recipes_the_license_and_typing_markers(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        fields = archive.read(metadata).decode().split("\n\n")[0].splitlines()
    assert {f"contrastive_core/shipped_recipes/{name}" for name in RECIPES} <= names
    assert {"contrastive_core/py.typed", "contrastive_plugins/py.typed"} <= names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert "License-Expression: Apache-2.0" in fields
    assert "Project-URL: Homepage, https://github.com/contrastive-ssl/contrastive" in fields
    requirements = [
        field.removeprefix("Requires-Dist: ") for field in fields if field.startswith("Requires-Dist:")
    ]
    assert "torch>=2.2" in requirements and "torchvision>=0.17" in requirements  # no upper caps
    assert any(requirement.startswith("tomli-w") for requirement in requirements)


def test_the_command_runs_from_the_installed_wheel(venv, tmp_path):
    where = _checked(
        venv / "python", "-c", "import contrastive_core; print(contrastive_core.__file__)", cwd=tmp_path
    )
    assert Path(where.stdout.strip()).is_relative_to(venv.parent), where.stdout  # not the checkout
    version = _checked(venv / "contrastive", "--version", cwd=tmp_path, env=_env())
    assert version.stdout.startswith("contrastive 0.1.0 (torch ")


def test_a_packaged_recipe_is_listed_copied_and_validated(venv, tmp_path):
    contrastive = venv / "contrastive"
    listing = _checked(contrastive, "recipes", cwd=tmp_path, env=_env()).stdout
    assert all(f"│ {Path(name).stem} " in listing for name in RECIPES), listing

    _checked(contrastive, "recipes", "quickstart", "--copy", cwd=tmp_path, env=_env())
    copied = tmp_path / "quickstart.toml"
    assert copied.read_bytes() == (ROOT / "recipes" / "quickstart.toml").read_bytes()

    validated = _checked(contrastive, "validate", copied, cwd=tmp_path, env=_env())
    assert "ok" in validated.stdout and "(3 stages)" in validated.stdout


def test_a_copied_recipe_runs_from_the_installed_wheel(venv, tmp_path):
    """The quickstart's own stages on the committed 64-image fixture: 2 pretraining steps, small
    evaluations, with the wheel's plugins."""
    contrastive = venv / "contrastive"
    _checked(contrastive, "recipes", "quickstart", "--copy", tmp_path, cwd=tmp_path, env=_env())
    shortened = [
        f"data.root={FIXTURE}",
        "stages[0].epochs=1",
        "stages[0].batch_size=32",
        "stages[1].train_examples=64",
        "stages[2].train_examples=64",
        "stages[2].epochs=1",
    ]
    overrides = [arg for override in shortened for arg in ("--set", override)]
    recipe = tmp_path / "quickstart.toml"
    run = _checked(
        contrastive, "run", recipe, "--out", tmp_path / "run", *overrides, cwd=tmp_path, env=_env()
    )
    assert "results" in run.stdout
    assert (tmp_path / "run" / "pretrain" / "encoder.safetensors").is_file()
