"""The VICReg loss on one process against its formulas written out in float64."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_plugins.vicreg.loss import vicreg_loss
from tests.vicreg.reference import vicreg_terms

DTYPE = torch.float64
CLOSE = {"rtol": 1e-10, "atol": 1e-12}
DEFAULTS = {"lambda_invariance": 25.0, "mu_variance": 25.0, "nu_covariance": 1.0, "gamma": 1.0, "eps": 1e-4}


def _pair(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two correlated views whose dimensions have standard deviations on both sides of gamma = 1."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, d, generator=generator, dtype=DTYPE)
    scale = torch.linspace(0.2, 2.5, d, dtype=DTYPE) if d > 1 else torch.tensor([0.4], dtype=DTYPE)
    z_a = (shared + 0.3 * torch.randn(n, d, generator=generator, dtype=DTYPE)) * scale
    z_b = (shared + 0.3 * torch.randn(n, d, generator=generator, dtype=DTYPE)) * scale.flip(0) + 1.0
    return z_a, z_b


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("d", [1, 3, 32])
@pytest.mark.parametrize(
    "coefficients",
    [
        DEFAULTS,
        {"lambda_invariance": 2.0, "mu_variance": 3.0, "nu_covariance": 5.0, "gamma": 1.5, "eps": 1e-2},
    ],
    ids=["defaults", "other"],
)
def test_loss_and_gradients_match_the_formulas(n: int, d: int, coefficients: dict[str, float]) -> None:
    z_a, z_b = _pair(n, d)
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    terms = vicreg_loss(a, b, **coefficients)
    terms.loss.backward()
    ref_a, ref_b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    expected = vicreg_terms(ref_a, ref_b, **coefficients)
    expected[0].backward()
    for actual, reference in zip(terms, expected, strict=True):
        assert actual.shape == () and actual.dtype == DTYPE
        torch.testing.assert_close(actual, reference.detach(), **CLOSE)
    torch.testing.assert_close(a.grad, ref_a.grad, **CLOSE)
    torch.testing.assert_close(b.grad, ref_b.grad, **CLOSE)


def test_the_test_data_has_hinges_both_active_and_inactive() -> None:
    # Otherwise the comparison above would not exercise the max(0, .) of the variance term.
    z_a, _ = _pair(16, 32)
    std = z_a.std(dim=0)
    assert (std < 1).any() and (std > 1).any()


def test_gradients_match_finite_differences() -> None:
    z_a, z_b = _pair(6, 4, seed=3)
    inputs = (z_a.requires_grad_(), z_b.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, b: vicreg_loss(a, b, 2.0, 3.0, 5.0).loss, inputs)


def test_no_variance_loss_when_every_std_reaches_gamma() -> None:
    z_a, z_b = _pair(16, 8)
    z_a = z_a / z_a.std(dim=0) * 2  # every std 2 >= gamma = 1
    z_b = z_b / z_b.std(dim=0) * 1.1
    a, b = z_a.requires_grad_(), z_b.requires_grad_()
    terms = vicreg_loss(a, b)
    assert terms.variance.item() == 0.0
    terms.variance.backward()
    assert a.grad.abs().max().item() == 0.0 and b.grad.abs().max().item() == 0.0


def test_a_collapsed_batch_costs_the_whole_hinge_and_nothing_else() -> None:
    # Every row the same: std sqrt(eps) in every dimension, no covariance, and identical views.
    z = torch.full((8, 5), 3.0, dtype=DTYPE)
    terms = vicreg_loss(z, z.clone())
    hinge = 1.0 - math.sqrt(1e-4)
    torch.testing.assert_close(terms.variance, torch.tensor(hinge, dtype=DTYPE), **CLOSE)
    torch.testing.assert_close(terms.invariance, torch.zeros((), dtype=DTYPE), rtol=0, atol=0)
    torch.testing.assert_close(terms.covariance, torch.zeros((), dtype=DTYPE), rtol=0, atol=0)
    torch.testing.assert_close(terms.loss, torch.tensor(25 * hinge, dtype=DTYPE), **CLOSE)


def test_a_case_computed_by_hand() -> None:
    # Z = [[0, 0], [2, 2]]: centred rows -+(1, 1), unbiased covariance [[2, 2], [2, 2]], so
    # c(Z) = (2^2 + 2^2) / 2 = 4; stds sqrt(2 + eps) > 1, so no hinge. Z' = Z + 1: s = 1, c(Z') = 4.
    z_a = torch.tensor([[0.0, 0.0], [2.0, 2.0]], dtype=DTYPE)
    terms = vicreg_loss(z_a, z_a + 1)
    expected = {"invariance": 1.0, "variance": 0.0, "covariance": 8.0, "loss": 25 * 1 + 25 * 0 + 1 * 8}
    for name, value in expected.items():
        torch.testing.assert_close(getattr(terms, name), torch.tensor(float(value), dtype=DTYPE), **CLOSE)


def test_refuses_a_batch_of_one_and_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        vicreg_loss(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="same shape"):
        vicreg_loss(torch.zeros(4, 3), torch.zeros(3, 3))
