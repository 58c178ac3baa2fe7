"""Starting contrastive: the package imports without torch, ``--version``, ``python -m contrastive_core``."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import contrastive_core

ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_importing_the_package_and_its_light_modules_does_not_import_torch():
    code = (
        "import sys, contrastive_core, contrastive_core.shipped_recipes\n"
        "from contrastive_core.version import describe_versions\n"
        "describe_versions()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'torchvision')))"
    )
    finished = _python("-c", code)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_defining_module():
    for name in contrastive_core.__all__:
        assert getattr(contrastive_core, name) is not None, name
    assert set(dir(contrastive_core)) >= set(contrastive_core.__all__)


def test_the_lazy_names_match_the_imports_type_checkers_see():
    """contrastive_core/__init__.py names each lazy attribute twice (the table and ``if TYPE_CHECKING``)."""
    tree = ast.parse((ROOT / "contrastive_core" / "__init__.py").read_text(encoding="utf-8"))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    seen = {alias.name: "." * node.level + node.module for node in block.body for alias in node.names}
    assert seen == contrastive_core._LAZY
    assert set(contrastive_core._LAZY) <= set(contrastive_core.__all__)


def test_version_names_contrastive_torch_and_python():
    finished = _python("-m", "contrastive_core", "--version")
    assert finished.returncode == 0, finished.stderr
    expected = (
        f"contrastive {contrastive_core.__version__} (torch {version('torch')}, "
        f"torchvision {version('torchvision')}, Python {sys.version.split()[0]})"
    )
    assert finished.stdout.strip() == expected


def test_python_dash_m_contrastive_core_runs_the_command():
    finished = _python("-m", "contrastive_core", "recipes", "quickstart")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == (ROOT / "recipes" / "quickstart.toml").read_text(encoding="utf-8")


def test_building_the_parser_imports_no_torch():
    """``contrastive --help`` (and every parse error) builds the whole parser: it must stay light, so
    every command module imports torch, the registry and the engine in its handler only."""
    code = (
        "import sys\n"
        "from contrastive_core.cli.main import _parser\n"
        "_parser().format_help()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'torchvision', 'pydantic')))"
    )
    finished = _python("-c", code)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[]"
