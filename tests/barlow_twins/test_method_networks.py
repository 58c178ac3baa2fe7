"""Barlow Twins' loss is eq. 1 over f and g applied to each view (float64, networks run by hand)."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import StepProgress
from contrastive_plugins.barlow_twins.method import BarlowTwins, BarlowTwinsParams
from tests.barlow_twins.reference import barlow_twins_terms
from tests.engine.tiny_networks import tiny_parts, two_views


@pytest.mark.parametrize("batch", [2, 5])
def test_the_loss_is_the_formula_on_each_views_projection(batch: int) -> None:
    params = BarlowTwinsParams()
    method = BarlowTwins(params, tiny_parts()).double().eval()
    view_a, view_b = two_views(batch)
    output = method({"global": torch.cat([view_a, view_b])}, StepProgress(0, 10, 10))
    with torch.no_grad():
        z_a, z_b = (method.head(method.encoder(view)) for view in (view_a, view_b))
    loss, on_diagonal, off_diagonal = barlow_twins_terms(z_a, z_b, params.lambda_offdiagonal, params.eps)
    assert output.loss.item() == pytest.approx(loss.item(), rel=1e-10)
    assert output.metrics["on_diagonal"].item() == pytest.approx(on_diagonal.item(), rel=1e-10)
    assert output.metrics["off_diagonal"].item() == pytest.approx(off_diagonal.item(), rel=1e-10)
    # The two views differ: a method comparing a view with itself would give another value.
    assert barlow_twins_terms(z_a, z_a, params.lambda_offdiagonal, params.eps)[0].item() != pytest.approx(
        loss.item(), rel=1e-3
    )
