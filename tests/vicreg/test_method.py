"""The vicreg method through the registry and the engine: it trains, logs its terms, runs per view."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_core import RecipeError, default_registry, validate_recipe
from contrastive_plugins.vicreg import method as method_module
from tests.barlow_twins.method_checks import (
    BATCH,
    encoder_batch_sizes,
    logged_records,
    loss_under_bf16_autocast,
    tiny_recipe,
    train_steps,
)
from tests.vicreg.reference import vicreg_terms

COEFFICIENTS = {
    "lambda_invariance": 5.0,
    "mu_variance": 10.0,
    "nu_covariance": 2.0,
    "gamma": 2.0,
    "eps": 1e-3,
}
METHOD = {"type": "vicreg", **COEFFICIENTS}
HEAD_OUT = 24
METRICS = {"invariance", "variance", "covariance"}


@pytest.fixture(scope="module")
def trained():
    return train_steps(METHOD)


def test_is_registered_with_the_papers_defaults() -> None:
    method = default_registry().get("method", "vicreg")
    assert method.requires == ("model.head",)
    params = method.Params(type="vicreg")
    defaults = (params.lambda_invariance, params.mu_variance, params.nu_covariance, params.gamma, params.eps)
    assert defaults == (25.0, 25.0, 1.0, 1.0, 1e-4)


def test_trains_three_steps_with_a_finite_loss_made_of_its_metrics(trained) -> None:
    _, outputs = trained
    for output in outputs:
        assert output.loss.ndim == 0 and torch.isfinite(output.loss)
        assert set(output.metrics) == METRICS
        assert all(value.ndim == 0 and not value.requires_grad for value in output.metrics.values())
        m = output.metrics
        expected = 5.0 * m["invariance"] + 10.0 * m["variance"] + 2.0 * m["covariance"]
        torch.testing.assert_close(output.loss, expected)


def test_runs_the_encoder_once_per_view(trained) -> None:
    parts, _ = trained
    assert encoder_batch_sizes(parts) == [BATCH, BATCH]


def test_the_loss_runs_in_float32_outside_autocast_with_the_methods_params(trained, monkeypatch) -> None:
    parts, _ = trained
    call = loss_under_bf16_autocast(parts, method_module, "vicreg_loss", monkeypatch)
    assert call["autocast"] is False
    z_a, z_b = call["inputs"]
    assert z_a.dtype == z_b.dtype == torch.float32 and z_a.shape == z_b.shape == (BATCH, HEAD_OUT)
    expected = vicreg_terms(z_a.double(), z_b.double(), **COEFFICIENTS)
    output = call["output"]
    assert output.loss.dtype == torch.float32
    torch.testing.assert_close(output.loss.double(), expected[0], rtol=1e-4, atol=1e-5)
    for index, name in enumerate(("invariance", "variance", "covariance"), start=1):
        torch.testing.assert_close(output.metrics[name].double(), expected[index], rtol=1e-4, atol=1e-5)


def test_the_pretrain_stage_logs_the_terms(tmp_path) -> None:
    records = logged_records(METHOD, tmp_path)
    assert [record["step"] for record in records] == [1, 2]
    for record in records:
        assert METRICS <= set(record) and all(math.isfinite(record[name]) for name in METRICS)


def test_unknown_and_out_of_range_params_are_refused() -> None:
    registry = default_registry()
    with pytest.raises(RecipeError, match="gamma"):
        validate_recipe(tiny_recipe(METHOD | {"gamma": 0.0}), registry=registry)
    with pytest.raises(RecipeError, match="std_coeff"):
        validate_recipe(tiny_recipe(METHOD | {"std_coeff": 25.0}), registry=registry)
