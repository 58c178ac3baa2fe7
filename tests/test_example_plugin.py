"""A real third-party plugin package, pip-installed into this environment, found through its entry point.

The package in tests/example_plugin is built and installed with pip (offline: no index, no build
isolation), then used by the real ``contrastive`` command in a recipe; it is uninstalled afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.engine.recipes import tiny_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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


# ------------------------------------------------------------------- the example's stateful method


def method_recipe(*, epochs: int = 3, augmentations: str = "crop", extra_method: str = "") -> str:
    """tiny_recipe with the example's momentum_predictor method: a predictor instead of a loss."""
    text = tiny_recipe(epochs=epochs, augmentations=augmentations, lr=0.2)
    text = text.replace('[method]\ntype = "simclr"', f'[method]\ntype = "momentum_predictor"\n{extra_method}')
    text = text.replace('[loss]\ntype = "nt_xent"\ntemperature = 0.5\n', "")
    return text.replace(
        "[optimizer]", '[model.predictor]\ntype = "mlp"\nhidden_dim = 32\nout_dim = 16\n\n[optimizer]'
    )


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """The method's whole state (online, target, centre) in the run's last checkpoint."""
    from contrastive_core.engine import load_file

    last = sorted((run_dir / "pretrain" / "checkpoints").glob("step-*"))[-1]
    return load_file(last / "state.pt")["method"]


def metrics(run_dir: Path) -> list[dict]:
    from contrastive_core.run_directory import read_metrics

    return read_metrics(run_dir / "pretrain" / "metrics.jsonl")


def test_its_method_trains_through_the_real_command(installed_example_plugin, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(method_recipe(epochs=2))
    result = contrastive("run", str(recipe), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "method 'momentum_predictor': global x 2 views" in result.stdout
    state = final_state(tmp_path / "run")
    # The target network and the centre are checkpointed with the online network, the online one once.
    assert any(key.startswith("target.network.") for key in state)
    assert "centre" in state and float(state["centre"].norm()) > 0
    assert not any(key.startswith("target.online") for key in state)
    # The target moved towards the online network but is not equal to it (momentum < 1).
    online = {
        key.removeprefix("encoder."): value for key, value in state.items() if key.startswith("encoder.")
    }
    target = {
        key.removeprefix("target.network.0."): value
        for key, value in state.items()
        if key.startswith("target.network.0.")
    }
    assert online.keys() == target.keys()
    assert any(
        not torch.equal(online[name], target[name]) for name in online if online[name].is_floating_point()
    )
    records = metrics(tmp_path / "run")
    assert all("centre_norm" in record for record in records)
    # A loss the method does not use is refused with its dotted path.
    recipe.write_text(method_recipe().replace("[optimizer]", '[loss]\ntype = "nt_xent"\n\n[optimizer]'))
    refused = contrastive("validate", str(recipe))
    assert refused.returncode == 2
    assert "loss: method 'momentum_predictor' does not use [loss]; remove it" in refused.stderr


def test_its_method_declares_published_settings_for_lint(installed_example_plugin, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(method_recipe(extra_method="momentum = 0.9"))
    result = contrastive("lint", str(recipe), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "momentum_predictor" and report["compared"] == 2
    (departure,) = report["departures"]
    assert departure["path"] == "method.momentum" and departure["recipe"] == 0.9
    assert departure["published"] == 0.99 and departure["source"] == "this example's design notes"


@pytest.mark.slow  # 20 s; the built-in methods' SIGKILL resume tests are in the default set
def test_its_method_resumes_bit_exactly_after_sigkill(installed_example_plugin, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(method_recipe(epochs=3))  # 12 steps, a checkpoint after every step
    reference = contrastive("run", str(recipe), "--out", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    kill_after = random.Random().randint(2, 10)
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [str(BIN / "contrastive"), "run", str(recipe), "--out", str(interrupted)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    target = interrupted / "pretrain" / "checkpoints" / f"step-{kill_after:08d}"
    deadline = time.monotonic() + 120
    while not target.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.kill()
    process.wait()
    resumed = contrastive("run", str(recipe), "--out", str(interrupted))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    expected, actual = final_state(tmp_path / "reference"), final_state(interrupted)
    assert expected.keys() == actual.keys()
    for name in expected:  # online and target weights, BN statistics, the centre
        assert torch.equal(expected[name], actual[name]), f"{name} differs (killed after step {kill_after})"
    assert [r["loss"] for r in metrics(interrupted)] == [r["loss"] for r in metrics(tmp_path / "reference")]


@pytest.mark.slow  # 19 s; the built-in methods' 2-process tests are in the default set
def test_its_method_on_two_processes_equals_one_process(installed_example_plugin, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(method_recipe(epochs=2, augmentations="none"))
    single = contrastive("run", str(recipe), "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    command = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "-m",
        "contrastive_core.cli",
        "run",
        str(recipe),
    ]
    double = subprocess.run(
        [*command, "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    torch.testing.assert_close([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-4, atol=1e-5)
    # The centre is all-reduced, so the state each process holds is the one-process state (a centre of
    # one process's half batch would differ by ~1e-1). Weights agree to the rounding that 8 steps at
    # lr 0.2 accumulate from the processes' different summation order.
    expected, actual = final_state(tmp_path / "one"), final_state(tmp_path / "two")
    torch.testing.assert_close(actual["centre"], expected["centre"], rtol=1e-4, atol=1e-5)
    for name, value in expected.items():
        if value.is_floating_point():
            torch.testing.assert_close(actual[name], value, rtol=1e-3, atol=1e-3, msg=name)


def test_its_frozen_predictor_stays_still_for_its_steps_then_trains(installed_example_plugin):
    from contrastive_core import Registry, StepProgress, get_plugin_manager, validate_recipe
    from tests.engine.method_steps import cpu_training_step

    registry = Registry.from_plugin_manager(get_plugin_manager())
    recipe = validate_recipe(
        tomllib.loads(method_recipe(extra_method="freeze_predictor_steps = 3")), registry=registry
    )
    parts, step = cpu_training_step(recipe, registry, total_steps=6)
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)

    def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in module.parameters()]

    predictor, encoder = [snapshot(parts.method.predictor)], [snapshot(parts.method.encoder)]
    for done in range(6):
        step(images, StepProgress(done, 6, 6))
        predictor.append(snapshot(parts.method.predictor))
        encoder.append(snapshot(parts.method.encoder))

    def moved(history: list[list[torch.Tensor]], index: int) -> bool:
        return any(not torch.equal(a, b) for a, b in zip(history[index], history[index + 1], strict=True))

    assert [moved(predictor, index) for index in range(6)] == [False, False, False, True, True, True]
    assert all(moved(encoder, index) for index in range(6))  # the rest trains throughout
