"""Packaging: every package folder of the tree is listed in pyproject.toml, so a wheel holds all of them.

pyproject.toml lists the packages explicitly because of its ``package-dir`` mapping (the folder
``plugins/`` is the import package ``contrastive_plugins``); a new subpackage missing from the list would
work in an editable install and be absent from a wheel.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def package_folders() -> set[str]:
    """The import name of every folder holding an ``__init__.py``, through ``package-dir``'s mapping."""
    found = set()
    for package, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            if "__pycache__" in parts:
                continue
            found.add(".".join((package, *parts)))
    return found


def test_the_package_dir_maps_plugins_to_contrastive_plugins_and_recipes_to_shipped_recipes():
    assert SETUPTOOLS["package-dir"] == {
        "contrastive_core": "contrastive_core",
        "contrastive_plugins": "plugins",
        "contrastive_core.shipped_recipes": "recipes",
    }
    # The data package carries the recipes, and both packages their py.typed marker (PEP 561).
    assert SETUPTOOLS["package-data"] == {
        "contrastive_core": ["py.typed"],
        "contrastive_core.shipped_recipes": ["*.toml"],
        "contrastive_plugins": ["py.typed"],
    }
    assert (ROOT / "contrastive_core" / "py.typed").is_file() and (ROOT / "plugins" / "py.typed").is_file()


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(SETUPTOOLS["packages"])
    found = package_folders()
    assert not found - listed, (
        f"package folders missing from [tool.setuptools] packages: {sorted(found - listed)}"
    )
    assert not listed - found, f"listed packages with no folder: {sorted(listed - found)}"
    assert len(SETUPTOOLS["packages"]) == len(listed), "a package is listed twice"


def test_the_console_script_and_plugin_entry_points_name_importable_objects():
    import importlib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    targets = [*project["scripts"].values(), *project["entry-points"]["contrastive.plugins"].values()]
    for target in targets:
        module, _, attribute = target.partition(":")
        imported = importlib.import_module(module)
        if attribute:
            assert callable(getattr(imported, attribute)), target
