"""BYOL's loss against a float64 reference written from Grill et al. 2020, eq. 2, over a grid of sizes."""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_plugins.byol.regression_loss import normalized_regression, symmetric_regression_loss

BATCHES = (1, 3, 16)
DIMS = (2, 7, 64)
CLOSE = {"rtol": 1e-10, "atol": 1e-12}


def reference_term(q: list[list[float]], z: list[list[float]]) -> float:
    """mean_i || q_i / ||q_i|| - z_i / ||z_i|| ||^2, one element at a time in Python floats."""
    total = 0.0
    for q_row, z_row in zip(q, z, strict=True):
        q_norm = math.sqrt(sum(v * v for v in q_row))
        z_norm = math.sqrt(sum(v * v for v in z_row))
        total += sum((a / q_norm - b / z_norm) ** 2 for a, b in zip(q_row, z_row, strict=True))
    return total / len(q)


def reference_gradient(q: list[list[float]], z: list[list[float]]) -> list[list[float]]:
    """d/dq of mean_i (2 - 2 q_i.z_i / (|q_i||z_i|)): -2/B (z^_i - (q^_i.z^_i) q^_i) / |q_i|, by hand."""
    rows = []
    for q_row, z_row in zip(q, z, strict=True):
        q_norm = math.sqrt(sum(v * v for v in q_row))
        z_norm = math.sqrt(sum(v * v for v in z_row))
        q_hat = [v / q_norm for v in q_row]
        z_hat = [v / z_norm for v in z_row]
        cosine = sum(a * b for a, b in zip(q_hat, z_hat, strict=True))
        rows.append([-2.0 / len(q) * (b - cosine * a) / q_norm for a, b in zip(q_hat, z_hat, strict=True)])
    return rows


def as_tensor(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _inputs(batch: int, dim: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, dim, generator=generator, dtype=torch.float64) for _ in range(4)]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("dim", DIMS)
def test_one_term_and_its_gradient_match_the_formula(batch: int, dim: int) -> None:
    q, z, _, _ = _inputs(batch, dim, seed=batch * 100 + dim)
    q.requires_grad_(True)
    loss = normalized_regression(q, z)
    loss.backward()
    assert loss.item() == pytest.approx(reference_term(q.tolist(), z.tolist()), rel=1e-12, abs=1e-12)
    torch.testing.assert_close(q.grad, as_tensor(reference_gradient(q.tolist(), z.tolist())), **CLOSE)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("dim", DIMS)
def test_the_symmetrised_loss_crosses_the_views(batch: int, dim: int) -> None:
    p_a, p_b, t_a, t_b = _inputs(batch, dim, seed=7 + batch * 100 + dim)
    p_a.requires_grad_(True)
    p_b.requires_grad_(True)
    loss = symmetric_regression_loss(p_a, p_b, t_a, t_b)
    loss.backward()
    expected = reference_term(p_a.tolist(), t_b.tolist()) + reference_term(p_b.tolist(), t_a.tolist())
    assert loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # Each prediction is pulled towards the *other* view's target.
    torch.testing.assert_close(p_a.grad, as_tensor(reference_gradient(p_a.tolist(), t_b.tolist())), **CLOSE)
    torch.testing.assert_close(p_b.grad, as_tensor(reference_gradient(p_b.tolist(), t_a.tolist())), **CLOSE)


def test_the_loss_is_scale_free_and_bounded() -> None:
    p_a, p_b, t_a, t_b = _inputs(5, 8, seed=3)
    loss = symmetric_regression_loss(p_a, p_b, t_a, t_b)
    assert symmetric_regression_loss(3 * p_a, p_b, t_a, 0.5 * t_b).item() == pytest.approx(loss.item())
    assert symmetric_regression_loss(t_b, t_a, t_a, t_b).item() == pytest.approx(0.0, abs=1e-12)
    assert symmetric_regression_loss(-t_b, -t_a, t_a, t_b).item() == pytest.approx(8.0)
