"""A real run at the numerically hardest setting the paper uses: temperature 0.01, here in bf16."""

from __future__ import annotations

import math

import pytest
from safetensors.torch import load_file

from tests.engine.recipes import tiny_recipe
from tests.reliability.cases import NUMERICS
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import contrastive_in_process
from tests.reliability.run_directory import losses


@pytest.mark.parametrize("case", mark_suite(NUMERICS))
def test_temperature_0_01_in_bf16_does_not_overflow(case, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        tiny_recipe(epochs=3, extra_run='precision = "bf16"', loss='type = "nt_xent"\ntemperature = 0.01')
    )
    run_dir = tmp_path / "run"
    finished = contrastive_in_process("run", str(recipe), "--out", str(run_dir))
    assert finished.returncode == 0, finished.stderr
    assert "precision bf16" in finished.stdout
    curve = losses(run_dir)
    assert len(curve) == 12 and all(math.isfinite(value) for value in curve), curve
    weights = load_file(str(run_dir / "pretrain" / "encoder.safetensors"))
    assert all(tensor.float().isfinite().all() for tensor in weights.values())
