"""The documentation site: the recipe reference matches the schema, and the strict mkdocs build passes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "recipe_reference.py"


def load_script():
    spec = importlib.util.spec_from_file_location("recipe_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_reference_matches_the_schema():
    script = load_script()
    assert script.PAGE.read_text(encoding="utf-8") == script.render(), (
        "docs/recipe-reference.md is out of date; regenerate it with: python scripts/recipe_reference.py"
    )


def test_recipe_reference_lists_every_component_and_parameter():
    """The generator itself leaves nothing out: every built-in component and each of its keys."""
    script = load_script()
    registry = script.builtin_registry()
    page = script.render(registry)
    for kind in ("augmentation", "encoder", "head", "loss", "optimizer", "scheduler", "dataset", "stage"):
        for registration in registry.registrations(kind):
            section = page.split(f"### `{registration.cls.name}`\n", 1)[1].split("\n### ", 1)[0]
            for name in registration.cls.Params.model_fields:
                if name != "type":
                    assert f"| `{name}` |" in section, f"{kind} {registration.cls.name}: {name} missing"
    assert "| `device` | `'auto' or 'cpu' or 'cuda'` | `\"auto\"` |" in page
    assert "| `epochs` | `int`, ≥ 1 | `100` |" in page


def test_docs_site_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs-material is not installed (pip install -e '.[dev]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "recipe-reference" / "index.html").is_file()


def test_the_hook_references_method_example_registers_and_trains():
    """The `register_methods` example of docs/hooks.md, run as written: registered, 3 steps on the CPU."""
    import types

    import torch

    from contrastive_core import Registry, StepProgress, get_plugin_manager, validate_recipe
    from tests.engine.method_steps import cpu_training_step
    from tests.engine.test_methods import recipe_for

    text = (ROOT / "docs" / "hooks.md").read_text()
    code = text.split("## register_methods", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    module = types.ModuleType("hooks_md_method")
    exec(compile(code, "docs/hooks.md", "exec", dont_inherit=True), module.__dict__)
    manager = get_plugin_manager(autoload=False)
    manager.register(module, name="hooks_md")
    import contrastive_plugins.datasets.plugin as datasets
    import contrastive_plugins.simclr.plugin as simclr
    import contrastive_plugins.stages.plugin as stages

    for plugin, name in ((simclr, "simclr"), (datasets, "datasets"), (stages, "stages")):
        manager.register(plugin, name=name)
    registry = Registry.from_plugin_manager(manager)
    recipe = validate_recipe(recipe_for(registry.get("method", "mean_squared")), registry=registry)
    _, step = cpu_training_step(recipe, registry)
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    losses = [step(images, StepProgress(done, 3, 3)).loss for done in range(3)]
    assert all(torch.isfinite(loss) for loss in losses)
