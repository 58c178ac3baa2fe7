"""BYOL's loss: the mean squared error between L2-normalised predictions and targets, over both view orders.

Grill et al. 2020, "Bootstrap Your Own Latent", Sec. 3.1, eq. 2: with q = q_theta(z_theta) the online
prediction of one view and z' = z'_xi the target projection of the other view,

    L = || q / ||q|| - z' / ||z'|| ||^2 = 2 - 2 <q, z'> / (||q|| ||z'||),

and the loss is symmetrised by swapping the views (eq. 2, L_total = L + L~). Each term is averaged over
the batch. Nothing is compared across images, so the loss of a global batch is the mean of its local
losses: with data parallelism DDP's gradient average already makes it exact, and no collective is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["normalized_regression", "symmetric_regression_loss"]


def normalized_regression(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``2 - 2 cos(p_i, t_i)`` averaged over rows: predictions (B, d) with gradient, targets (B, d) -> 0-d.

    Equal to ``mean_i || p_i / ||p_i|| - t_i / ||t_i|| ||^2`` (eq. 2); rows of zero norm count as
    cosine 0 (``F.normalize``'s epsilon) rather than producing NaN.
    """
    cosine = (F.normalize(predictions, dim=1) * F.normalize(targets, dim=1)).sum(dim=1)
    return (2 - 2 * cosine).mean()


def symmetric_regression_loss(
    prediction_a: torch.Tensor,
    prediction_b: torch.Tensor,
    target_a: torch.Tensor,
    target_b: torch.Tensor,
) -> torch.Tensor:
    """BYOL's L_total: view a's prediction against view b's target, plus b's against a's. All (B, d) -> 0-d.

    The targets come from the target network and carry no gradient; the sum (not the mean) of the two
    terms is the paper's (L + L~, values in [0, 8]).
    """
    return normalized_regression(prediction_a, target_b) + normalized_regression(prediction_b, target_a)
