"""The VICReg objective on the global batch (Bardes, Ponce, LeCun 2022, "VICReg: Variance-Invariance-
Covariance Regularization for Self-Supervised Learning", ICLR, arXiv:2105.04906, Sec. 3).

``Z`` and ``Z'`` are the (n, d) embeddings of the two views of the same n images (z_i and z'_i the same
image). Three terms, each on the batch:

* invariance ``s(Z, Z')``: the mean squared distance between the paired embeddings;
* variance ``v(Z) = (1/d) sum_j max(0, gamma - sqrt(Var(z^j) + eps))``: a hinge keeping the standard
  deviation of every dimension j over the batch at or above gamma (unbiased variance), which forbids
  the collapse to a constant;
* covariance ``c(Z) = (1/d) sum_{i != j} C(Z)_ij^2`` with
  ``C(Z) = (1/(n-1)) sum_i (z_i - zbar)(z_i - zbar)^T``: decorrelates the dimensions so they do not
  all carry the same information.

The loss is ``lambda * s(Z, Z') + mu * (v(Z) + v(Z')) / 2 + nu * (c(Z) + c(Z'))``.

Two places where the authors' code (facebookresearch/vicreg, ``main_vicreg.py``), which trained the
published results with lambda = mu = 25 and nu = 1, differs from the paper's formulas, and where this
module follows the code so those coefficients mean what they meant there:

* the paper writes ``s = (1/n) sum_i ||z_i - z'_i||^2``; the code averages the squared differences over
  both the n rows and the d dimensions (``F.mse_loss``), i.e. the paper's s divided by d. Here s is
  divided by n * d.
* the paper writes ``mu * [v(Z) + v(Z')]``; the code averages the two views' hinges, i.e.
  ``mu * [v(Z) + v(Z')] / 2`` (a question raised in facebookresearch/vicreg issues 8 and 26). Here the
  variance term is that mean; the paper's formula is this one with mu doubled. The covariance terms are
  summed, in the paper and in the code alike.

Every statistic is over the *global* batch: the rows of every process are gathered with a backward
(:func:`~contrastive_core.distributed.gather_with_grad`) and every process computes the same loss, the
one a single process holding the whole batch would (the convention of
:mod:`contrastive_core.distributed.collectives`: DDP's average over W processes then gives the true
gradients). The reference code gathers for v and c as well; its s is over the local batch, whose mean
over processes is the same value.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from contrastive_core.distributed import gather_with_grad

__all__ = ["VICRegTerms", "covariance", "invariance", "variance", "vicreg_loss"]


class VICRegTerms(NamedTuple):
    """The loss and its three unweighted terms, all 0-d and in the inputs' dtype."""

    loss: torch.Tensor
    """``lambda * invariance + mu * variance + nu * covariance``, the value minimised."""
    invariance: torch.Tensor
    """``s(Z, Z')``: mean squared difference over the N rows and d dimensions."""
    variance: torch.Tensor
    """``(v(Z) + v(Z')) / 2``: the mean over both views and all dimensions of the std hinge, in [0, gamma]."""
    covariance: torch.Tensor
    """``c(Z) + c(Z')``: the squared off-diagonal covariances of both views, each sum divided by d."""


def invariance(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """(N, d), (N, d) -> 0-d: ``sum_i ||z_a_i - z_b_i||^2 / (N d)`` (the authors' code's s, see the module)."""
    return (z_a - z_b).pow(2).mean()


def variance(z: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    """(N, d) -> 0-d: ``v(Z) = (1/d) sum_j max(0, gamma - sqrt(Var(z^j) + eps))``.

    Var is the unbiased variance over the N rows; eps keeps the square root's gradient finite when a
    dimension has collapsed (d sqrt(x)/dx is infinite at 0).
    """
    std = torch.sqrt(z.var(dim=0, correction=1) + eps)  # (d,)
    return torch.relu(gamma - std).mean()


def covariance(z: torch.Tensor) -> torch.Tensor:
    """(N, d) -> 0-d: ``c(Z) = (1/d) sum_{i != j} C(Z)_ij^2``, C the (d, d) unbiased covariance matrix.

    The diagonal (the variances, handled by :func:`variance`) is zeroed rather than its squares
    subtracted from the total, which in float32 would lose the low digits of a small off-diagonal sum
    (zeroing ``pow``'s output in place is safe: its backward reads its input).
    """
    n, d = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)  # (d, d)
    return cov.pow(2).fill_diagonal_(0).sum() / d


def vicreg_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    lambda_invariance: float = 25.0,
    mu_variance: float = 25.0,
    nu_covariance: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> VICRegTerms:
    """The VICReg loss of the global batch, from this process's rows.

    Args:
        z_a, z_b: ``(n, d)``, this process's embeddings of the first and second view (Z and Z'); row i of
            each is the same image. Every process passes the same n (equal local batches); the global
            batch N = W * n must be at least 2 (the unbiased variance and covariance divide by N - 1).
        lambda_invariance, mu_variance, nu_covariance: the weights lambda, mu and nu of the three terms.
        gamma: the target standard deviation of every dimension.
        eps: added to the variance under the square root.

    Returns:
        :class:`VICRegTerms` of 0-d tensors, identical on every process: the loss of the ``(W * n, d)``
        global batch. Computed in the inputs' dtype; callers cast to float32 first.
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"z_a and z_b must be (n, d) of the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    z_a, z_b = gather_with_grad(z_a), gather_with_grad(z_b)  # (N, d) each, the global batch
    if z_a.shape[0] < 2:
        raise ValueError("VICReg needs a global batch of at least 2 rows (its variances divide by N - 1)")
    s = invariance(z_a, z_b)
    v = (variance(z_a, gamma, eps) + variance(z_b, gamma, eps)) / 2
    c = covariance(z_a) + covariance(z_b)
    loss = lambda_invariance * s + mu_variance * v + nu_covariance * c
    return VICRegTerms(loss, s, v, c)
