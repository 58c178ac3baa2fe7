"""The Barlow Twins objective on the global batch (Zbontar et al. 2021, arXiv:2103.03230, eq. 1-2).

With ``z_a`` and ``z_b`` the projections of the two views of the same N images, each dimension is
standardised over the batch (mean 0, standard deviation 1; the paper: "mean-centered along the batch
dimension", eq. 2 divides by the norms), and the empirical cross-correlation between the two views is

    C_ij = sum_b za_n[b, i] * zb_n[b, j] / N                                       (eq. 2)

which lies in [-1, 1]. The loss pulls the diagonal to 1 (each dimension invariant to the augmentations)
and the off-diagonal to 0 (different dimensions carry non-redundant information):

    L = sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2                     (eq. 1)

The standardisation is the authors' code's: a BatchNorm without affine parameters in training mode,
i.e. the batch mean and the *biased* batch variance plus eps (1e-5) under the square root; that
makes C_ii = Var / (Var + eps), slightly below 1 even for identical views.

Every statistic here is over the *global* batch: the rows of every process are gathered (with a
backward, :func:`~contrastive_core.distributed.gather_with_grad`) and each process computes the same
loss, the one a single process holding the whole batch would compute. The gradient reaching a
process's rows is then W times the true one and DDP's average over the W processes restores it (the
convention of :mod:`contrastive_core.distributed.collectives`). The reference code all-reduces C instead
(and SyncBatchNorm supplies the global statistics); a gather of the (N, d) projections moves less data
than an all-reduce of the (d, d) matrix when d = 8192 exceeds the global batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from contrastive_core.distributed import gather_with_grad

__all__ = [
    "BarlowTwinsTerms",
    "barlow_twins_loss",
    "cross_correlation",
    "off_diagonal_sum_of_squares",
    "standardise",
]


class BarlowTwinsTerms(NamedTuple):
    """The loss and its two unweighted terms, all 0-d and in the inputs' dtype."""

    loss: torch.Tensor
    """``on_diagonal + lambda * off_diagonal``, the value minimised."""
    on_diagonal: torch.Tensor
    """``sum_i (1 - C_ii)^2``, the invariance term."""
    off_diagonal: torch.Tensor
    """``sum_{i != j} C_ij^2``, the redundancy-reduction term (not yet multiplied by lambda)."""


def standardise(z: torch.Tensor, eps: float) -> torch.Tensor:
    """(N, d) -> (N, d): every column minus its mean, over sqrt(its biased variance + eps).

    The transform of ``nn.BatchNorm1d(d, affine=False)`` in training mode, here differentiable on any
    dtype (float64 in the tests).
    """
    centred = z - z.mean(dim=0)
    variance = centred.pow(2).mean(dim=0)  # biased (over N): what BatchNorm normalises with in training
    return centred / torch.sqrt(variance + eps)


def cross_correlation(z_a: torch.Tensor, z_b: torch.Tensor, eps: float) -> torch.Tensor:
    """Two views' projections (N, d) each, rows paired -> their cross-correlation C (d, d) (eq. 2)."""
    return standardise(z_a, eps).T @ standardise(z_b, eps) / z_a.shape[0]


def off_diagonal_sum_of_squares(matrix: torch.Tensor) -> torch.Tensor:
    """(d, d) -> 0-d: the sum of the squares of the entries off the diagonal.

    The diagonal is zeroed rather than its squares subtracted from the total: with d = 8192 the diagonal
    contributes ~d while the off-diagonal sum may be far smaller, and a float32 difference of the two
    would lose its low digits. (Zeroing the output of ``pow`` in place is safe for autograd: the
    backward of ``pow`` reads its input, not its output.)
    """
    return matrix.pow(2).fill_diagonal_(0).sum()


def barlow_twins_loss(
    z_a: torch.Tensor, z_b: torch.Tensor, lambda_offdiagonal: float = 0.0051, eps: float = 1e-5
) -> BarlowTwinsTerms:
    """The Barlow Twins loss of the global batch, from this process's rows.

    Args:
        z_a, z_b: ``(n, d)``, this process's projections of the first and second view; row i of each is
            the same image. Every process passes the same n (equal local batches).
        lambda_offdiagonal: lambda of eq. 1, the weight of the off-diagonal term.
        eps: added to the biased variance before the square root in the standardisation.

    Returns:
        :class:`BarlowTwinsTerms` of 0-d tensors, identical on every process: the loss of the
        ``(W * n, d)`` global batch. Computed in the inputs' dtype; callers cast to float32 first.
    """
    if z_a.ndim != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"z_a and z_b must be (n, d) of the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    c = cross_correlation(gather_with_grad(z_a), gather_with_grad(z_b), eps)  # (d, d), global batch
    on_diagonal = (1 - torch.diagonal(c)).pow(2).sum()
    off_diagonal = off_diagonal_sum_of_squares(c)
    return BarlowTwinsTerms(on_diagonal + lambda_offdiagonal * off_diagonal, on_diagonal, off_diagonal)
