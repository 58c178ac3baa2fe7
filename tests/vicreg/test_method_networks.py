"""VICReg's loss is its formula over f and g applied to each view (float64, networks run by hand)."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import StepProgress
from contrastive_plugins.vicreg.method import VICReg, VICRegParams
from tests.engine.tiny_networks import tiny_parts, two_views
from tests.vicreg.reference import vicreg_terms


@pytest.mark.parametrize("batch", [2, 5])
def test_the_loss_is_the_formula_on_each_views_projection(batch: int) -> None:
    params = VICRegParams()
    method = VICReg(params, tiny_parts()).double().eval()
    view_a, view_b = two_views(batch)
    output = method({"global": torch.cat([view_a, view_b])}, StepProgress(0, 10, 10))
    with torch.no_grad():
        z_a, z_b = (method.head(method.encoder(view)) for view in (view_a, view_b))
    coefficients = (
        params.lambda_invariance,
        params.mu_variance,
        params.nu_covariance,
        params.gamma,
        params.eps,
    )
    loss, invariance, variance, covariance = vicreg_terms(z_a, z_b, *coefficients)
    assert output.loss.item() == pytest.approx(loss.item(), rel=1e-10)
    for name, expected in (("invariance", invariance), ("variance", variance), ("covariance", covariance)):
        assert output.metrics[name].item() == pytest.approx(expected.item(), rel=1e-10, abs=1e-14)
    assert invariance.item() > 1e-3  # the two views differ, so comparing a view with itself would show
