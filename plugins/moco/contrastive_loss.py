"""MoCo v3's contrastive loss (Chen, Xie, He 2021, "An Empirical Study of Training Self-Supervised Vision
Transformers", arXiv:2104.02057, Sec. 3, eq. 1 and Algorithm 1).

MoCo v3 drops the queue: the keys of the other images of the same (global) batch are the negatives. For
a query q (the online network's prediction of one view), its positive k_+ (the momentum encoder's key
of the other view of the same image) and temperature tau, eq. 1 is the InfoNCE

    L_q = -log( exp(q . k_+ / tau) / sum_{k in keys of the batch} exp(q . k / tau) ),

q and k L2-normalised. Over a batch it is a cross-entropy of the logits ``q_i . k_j / tau`` whose label
for query i is its own image's key. Algorithm 1 scales it by 2 tau, which makes the loss less sensitive to
the choice of tau (the reference code does the same):

    ctr(q, k) = 2 tau * mean_i CrossEntropy(q_n k_n_all^T / tau, label_i),

and the loss is symmetrised over the two views: ctr(q1, k2) + ctr(q2, k1).

With W processes each process holds its B queries; the keys of all processes are gathered (no gradient,
keys come from the momentum encoder), so every query is contrasted with all W B keys and the positive
of process r's query i is global key ``r B + i``. The value returned is the global batch's loss while
the gradient is that of the local mean, so that after DDP's average over W processes the parameters
get the global batch's gradient (the convention of :mod:`contrastive_core.distributed`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastive_core.distributed import all_reduce_mean, gather_with_grad, rank, world_size
from contrastive_core.engine import at_least_float32

__all__ = ["contrastive_loss"]


def contrastive_loss(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """ctr(q, k) of MoCo v3 (Algorithm 1): InfoNCE of ``queries`` against the global batch of ``keys``, times 2 tau.

    Args:
        queries: ``(B, d)`` this process's queries q, with gradient; L2-normalised here, so the
            gradient flows through the normalisation.
        keys: ``(B, d)`` this process's keys k, row i the positive of query i; detached (no gradient
            reaches the momentum encoder), L2-normalised and gathered over processes into ``(W B, d)``.
            Every process must pass the same B.
        temperature: tau > 0 (1.0 for ResNet-50 in the paper's setting, 0.2 for ViT).

    Returns:
        0-d: ``2 tau`` times the mean cross-entropy over the global batch of queries, in float32 (float64
        for float64 inputs), computed with autocast disabled.
    """
    if queries.ndim != 2 or queries.shape != keys.shape:
        raise ValueError(
            f"contrastive_loss expects queries and keys of the same shape (B, d), got {tuple(queries.shape)} "
            f"and {tuple(keys.shape)}"
        )
    batch = queries.shape[0]
    with torch.autocast(device_type=queries.device.type, enabled=False):
        q = F.normalize(at_least_float32(queries), dim=1)
        with torch.no_grad():
            # (W B, d) in rank order: process r's keys are rows [r B, (r + 1) B).
            all_keys = gather_with_grad(F.normalize(keys.detach().to(q.dtype), dim=1))
        logits = q @ all_keys.T / temperature  # (B, W B)
        labels = torch.arange(batch, device=q.device) + rank() * batch  # query i's own key, globally
        local_loss = F.cross_entropy(logits, labels) * (2 * temperature)
    if world_size() == 1:
        return local_loss
    # The global-batch value with the local gradient: the detached difference shifts the value only.
    return local_loss + (all_reduce_mean(local_loss) - local_loss.detach())
