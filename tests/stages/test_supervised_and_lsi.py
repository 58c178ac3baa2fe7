"""supervised (training from scratch) and the linear separability index of a recipe."""

from __future__ import annotations

import pytest

from contrastive_plugins.stages.lsi import linear_separability_index
from tests.stages.conftest import export_random_encoder, recipe, run

SYNTHETIC = {"type": "synthetic_classes", "num_classes": 3}
LINEAR = {"type": "linear_eval", "epochs": 10, "batch_size": 8, "data": SYNTHETIC}
SUPERVISED = {"type": "supervised", "epochs": 3, "batch_size": 8, "lr": 0.05, "data": SYNTHETIC}


def test_lsi_formula():
    assert linear_separability_index(0.6, 0.8) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="undefined"):
        linear_separability_index(0.5, 0.0)


@pytest.mark.parametrize("order", [("linear_eval", "supervised"), ("supervised", "linear_eval")])
def test_the_later_of_linear_eval_and_supervised_reports_lsi(registry, exported, tmp_path, order):
    stages = {
        "linear_eval": {**LINEAR, "encoder": str(exported)},
        "supervised": {**SUPERVISED, "encoder": str(exported)},
    }
    results, _ = run(registry, recipe(*(stages[name] for name in order)), tmp_path / "run")
    first, later = order
    assert "lsi" not in results[first]
    linear, supervised = results["linear_eval"]["top1"], results["supervised"]["top1"]
    assert supervised > 0
    assert results[later]["lsi"] == pytest.approx(linear / supervised)


def test_no_lsi_between_different_datasets(registry, exported, tmp_path):
    other = {**SYNTHETIC, "pattern_seed": 5}
    stages = [{**LINEAR, "encoder": str(exported)}, {**SUPERVISED, "encoder": str(exported), "data": other}]
    results, output = run(registry, recipe(*stages), tmp_path / "run")
    assert "lsi" not in results["supervised"]
    assert "no LSI with stage 'linear_eval'" in output


def test_supervised_uses_the_architecture_not_the_weights(registry, exported, tmp_path):
    """Two exported encoders with the same architecture and different weights give the same result."""
    other = export_random_encoder(registry, tmp_path / "other", seed=99)
    first, output = run(registry, recipe({**SUPERVISED, "encoder": str(exported)}), tmp_path / "a")
    second, _ = run(registry, recipe({**SUPERVISED, "encoder": str(other)}), tmp_path / "b")
    assert first == second
    assert "its weights are not used" in output and "supervised epoch 3/3" in output
