"""VICReg written out from its formulas (Bardes, Ponce, LeCun 2022), for the tests.

Plain, slow float64 arithmetic with explicit loops over rows and dimensions; nothing from the plugin.
It follows the conventions the plugin documents (those of the authors' code): the invariance is averaged
over the N rows and the d dimensions, and the variance term is the mean of the two views' hinges.
"""

from __future__ import annotations

import torch


def invariance(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """sum_i ||z_a_i - z_b_i||^2 / (N d)."""
    n, d = z_a.shape
    return sum(((z_a[i] - z_b[i]) ** 2).sum() for i in range(n)) / (n * d)


def _centred_columns(z: torch.Tensor) -> list[torch.Tensor]:
    n, d = z.shape
    return [z[:, j] - z[:, j].sum() / n for j in range(d)]


def variance(z: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    """v(Z) = (1/d) sum_j max(0, gamma - sqrt(Var(z^j) + eps)), Var unbiased."""
    n, d = z.shape
    hinges = []
    for column in _centred_columns(z):
        std = torch.sqrt((column**2).sum() / (n - 1) + eps)
        hinges.append(torch.clamp(gamma - std, min=0))
    return sum(hinges) / d


def covariance(z: torch.Tensor) -> torch.Tensor:
    """c(Z) = (1/d) sum_{i != j} C_ij^2, C_ij = sum_b (z_bi - mean_i)(z_bj - mean_j) / (N - 1)."""
    n, d = z.shape
    columns = _centred_columns(z)
    total = torch.zeros((), dtype=z.dtype)
    for i in range(d):
        for j in range(d):
            if i != j:
                total = total + ((columns[i] * columns[j]).sum() / (n - 1)) ** 2
    return total / d


def vicreg_terms(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    lambda_invariance: float,
    mu_variance: float,
    nu_covariance: float,
    gamma: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, invariance, variance, covariance): lambda s + mu (v(Z) + v(Z')) / 2 + nu (c(Z) + c(Z'))."""
    s = invariance(z_a, z_b)
    v = (variance(z_a, gamma, eps) + variance(z_b, gamma, eps)) / 2
    c = covariance(z_a) + covariance(z_b)
    return lambda_invariance * s + mu_variance * v + nu_covariance * c, s, v, c
