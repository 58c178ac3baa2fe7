"""The Barlow Twins loss on one process against the paper's formulas written out in float64."""

from __future__ import annotations

import pytest
import torch

from contrastive_plugins.barlow_twins.loss import barlow_twins_loss
from tests.barlow_twins.reference import barlow_twins_terms

DTYPE = torch.float64
CLOSE = {"rtol": 1e-10, "atol": 1e-12}


def _pair(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two correlated views with dimensions of different means and scales (the loss must not care)."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, d, generator=generator, dtype=DTYPE)
    scale = torch.rand(d, generator=generator, dtype=DTYPE) * 3 + 0.1
    shift = torch.randn(d, generator=generator, dtype=DTYPE) * 2
    z_a = (shared + 0.5 * torch.randn(n, d, generator=generator, dtype=DTYPE)) * scale + shift
    z_b = shared + 0.5 * torch.randn(n, d, generator=generator, dtype=DTYPE)
    return z_a, z_b


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("d", [1, 3, 32])
@pytest.mark.parametrize(("lambda_offdiagonal", "eps"), [(0.0051, 1e-5), (0.3, 1e-2)])
def test_loss_and_gradients_match_the_formulas(n: int, d: int, lambda_offdiagonal: float, eps: float) -> None:
    z_a, z_b = _pair(n, d)
    a, b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    terms = barlow_twins_loss(a, b, lambda_offdiagonal, eps)
    terms.loss.backward()
    ref_a, ref_b = z_a.clone().requires_grad_(), z_b.clone().requires_grad_()
    expected = barlow_twins_terms(ref_a, ref_b, lambda_offdiagonal, eps)
    expected[0].backward()
    for actual, reference in zip(terms, expected, strict=True):
        assert actual.shape == () and actual.dtype == DTYPE
        torch.testing.assert_close(actual, reference.detach(), **CLOSE)
    torch.testing.assert_close(a.grad, ref_a.grad, **CLOSE)
    torch.testing.assert_close(b.grad, ref_b.grad, **CLOSE)


def test_gradients_match_finite_differences() -> None:
    z_a, z_b = _pair(6, 4, seed=3)
    inputs = (z_a.requires_grad_(), z_b.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins_loss(a, b, 0.3, 1e-3).loss, inputs)


def test_identical_views_have_no_on_diagonal_loss_without_eps() -> None:
    z, _ = _pair(16, 8)
    terms = barlow_twins_loss(z, z.clone(), eps=0.0)
    torch.testing.assert_close(terms.on_diagonal, torch.zeros((), dtype=DTYPE), rtol=0, atol=1e-12)


def test_eps_pulls_the_diagonal_below_one_by_a_computable_amount() -> None:
    # Identical views: C_ii = Var_i / (Var_i + eps), so the on-diagonal term is sum_i (eps / (Var_i + eps))^2.
    z = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [3.0, 7.0]], dtype=DTYPE)
    eps = 0.1
    biased_variances = torch.tensor([1.25, 5.0], dtype=DTYPE)  # of 0,1,2,3 and of 1,3,5,7
    expected = ((eps / (biased_variances + eps)) ** 2).sum()
    torch.testing.assert_close(barlow_twins_loss(z, z, eps=eps).on_diagonal, expected, **CLOSE)


def test_orthogonal_standardised_dimensions_give_the_identity_and_zero_loss() -> None:
    # Columns of a 4 x 4 Hadamard matrix without its constant column: mean 0, biased variance 1, and
    # mutually orthogonal, so C = I exactly (eps = 0).
    z = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=DTYPE)
    terms = barlow_twins_loss(z, z, lambda_offdiagonal=1.0, eps=0.0)
    for value in terms:
        torch.testing.assert_close(value, torch.zeros((), dtype=DTYPE), rtol=0, atol=1e-14)


def test_opposite_views_cost_four_per_dimension() -> None:
    z, _ = _pair(10, 5)
    terms = barlow_twins_loss(z, -z, eps=0.0)  # C_ii = -1: (1 - (-1))^2 = 4 for each of the 5
    torch.testing.assert_close(terms.on_diagonal, torch.tensor(20.0, dtype=DTYPE), **CLOSE)


def test_the_loss_ignores_each_dimensions_scale_and_shift() -> None:
    z_a, z_b = _pair(12, 6)
    scale = torch.linspace(0.2, 5.0, 6, dtype=DTYPE)
    before = barlow_twins_loss(z_a, z_b, 0.3, eps=0.0).loss
    after = barlow_twins_loss(z_a * scale - 7.0, z_b, 0.3, eps=0.0).loss
    torch.testing.assert_close(after, before, **CLOSE)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="same shape"):
        barlow_twins_loss(torch.zeros(4, 3), torch.zeros(4, 2))
