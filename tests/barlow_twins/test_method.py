"""The barlow_twins method through the registry and the engine: it trains, logs its terms, runs per view."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_core import RecipeError, default_registry, validate_recipe
from contrastive_plugins.barlow_twins import method as method_module
from tests.barlow_twins.method_checks import (
    BATCH,
    encoder_batch_sizes,
    logged_records,
    loss_under_bf16_autocast,
    tiny_recipe,
    train_steps,
)
from tests.barlow_twins.reference import barlow_twins_terms

METHOD = {"type": "barlow_twins", "lambda_offdiagonal": 0.01, "eps": 1e-3}
HEAD_OUT = 24
METRICS = {"on_diagonal", "off_diagonal"}


@pytest.fixture(scope="module")
def trained():
    return train_steps(METHOD)


def test_is_registered_with_the_papers_defaults() -> None:
    method = default_registry().get("method", "barlow_twins")
    assert method.requires == ("model.head",)
    params = method.Params(type="barlow_twins")
    assert (params.lambda_offdiagonal, params.eps) == (0.0051, 1e-5)


def test_trains_three_steps_with_a_finite_loss_made_of_its_metrics(trained) -> None:
    _, outputs = trained
    for output in outputs:
        assert output.loss.ndim == 0 and torch.isfinite(output.loss)
        assert set(output.metrics) == METRICS
        assert all(value.ndim == 0 and not value.requires_grad for value in output.metrics.values())
        expected = (
            output.metrics["on_diagonal"] + METHOD["lambda_offdiagonal"] * output.metrics["off_diagonal"]
        )
        torch.testing.assert_close(output.loss, expected)


def test_runs_the_encoder_once_per_view(trained) -> None:
    parts, _ = trained
    assert encoder_batch_sizes(parts) == [BATCH, BATCH]


def test_the_loss_runs_in_float32_outside_autocast_with_the_methods_params(trained, monkeypatch) -> None:
    parts, _ = trained
    call = loss_under_bf16_autocast(parts, method_module, "barlow_twins_loss", monkeypatch)
    assert call["autocast"] is False
    z_a, z_b = call["inputs"]
    assert z_a.dtype == z_b.dtype == torch.float32 and z_a.shape == z_b.shape == (BATCH, HEAD_OUT)
    expected = barlow_twins_terms(z_a.double(), z_b.double(), METHOD["lambda_offdiagonal"], METHOD["eps"])
    output = call["output"]
    assert output.loss.dtype == torch.float32
    torch.testing.assert_close(output.loss.double(), expected[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(output.metrics["off_diagonal"].double(), expected[2], rtol=1e-4, atol=1e-5)


def test_the_pretrain_stage_logs_the_terms(tmp_path) -> None:
    records = logged_records(METHOD, tmp_path)
    assert [record["step"] for record in records] == [1, 2]
    for record in records:
        assert METRICS <= set(record) and all(math.isfinite(record[name]) for name in METRICS)


def test_a_negative_lambda_is_refused() -> None:
    with pytest.raises(RecipeError, match="lambda_offdiagonal"):
        validate_recipe(tiny_recipe(METHOD | {"lambda_offdiagonal": -1.0}), registry=default_registry())
