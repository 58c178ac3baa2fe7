"""Barlow Twins written out from the paper's formulas (Zbontar et al. 2021, eq. 1-2), for the tests.

Plain, slow float64 arithmetic with explicit loops over the dimensions i and j; nothing from the plugin.
The standardisation is BatchNorm's without affine parameters: batch mean and biased variance plus eps.
"""

from __future__ import annotations

import torch


def standardised_columns(z: torch.Tensor, eps: float) -> list[torch.Tensor]:
    """(N, d) -> d columns of N values, each minus its mean, over sqrt(biased variance + eps)."""
    n, d = z.shape
    columns = []
    for j in range(d):
        column = z[:, j]
        mean = column.sum() / n
        biased_variance = ((column - mean) ** 2).sum() / n
        columns.append((column - mean) / torch.sqrt(biased_variance + eps))
    return columns


def cross_correlation(z_a: torch.Tensor, z_b: torch.Tensor, eps: float) -> list[list[torch.Tensor]]:
    """C[i][j] = sum_b a_n[b, i] b_n[b, j] / N (eq. 2), as nested lists of 0-d tensors."""
    n, d = z_a.shape
    a, b = standardised_columns(z_a, eps), standardised_columns(z_b, eps)
    return [[(a[i] * b[j]).sum() / n for j in range(d)] for i in range(d)]


def barlow_twins_terms(
    z_a: torch.Tensor, z_b: torch.Tensor, lambda_offdiagonal: float, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, on_diagonal, off_diagonal) of eq. 1 for the (N, d) pair."""
    d = z_a.shape[1]
    c = cross_correlation(z_a, z_b, eps)
    on_diagonal = sum((1 - c[i][i]) ** 2 for i in range(d))
    off_diagonal = sum(c[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    if isinstance(off_diagonal, int):  # d = 1: nothing off the diagonal
        off_diagonal = torch.zeros((), dtype=z_a.dtype)
    return on_diagonal + lambda_offdiagonal * off_diagonal, on_diagonal, off_diagonal
