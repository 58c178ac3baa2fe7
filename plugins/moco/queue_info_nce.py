"""InfoNCE against a queue of negative keys: the loss of MoCo (He et al. 2020, arXiv:1911.05722, eq. 1)
and MoCo v2 (Chen, Fan, Girshick, He 2020, arXiv:2003.04297).

For a query q and its positive key k_+ (the momentum encoder's key of another view of the same image),
with the K keys k_1 .. k_K of the queue as negatives and a temperature tau,

    L_q = -log( exp(q . k_+ / tau) / ( exp(q . k_+ / tau) + sum_j exp(q . k_j / tau) ) ),

all vectors L2-normalised, averaged over the queries of the batch. This is a (K + 1)-way softmax
classification whose label is the positive, written as a cross-entropy over the logits
``[q . k_+, q . k_1, ..., q . k_K] / tau`` with target class 0.

Rows of the queue that were never written are no negatives: their logits are set to -inf, so they
contribute exp(-inf) = 0 to the denominator and receive no gradient. With an empty queue only the
positive is left and the loss is exactly 0.

With several processes each process holds its own queries and the same queue; the value returned is
the loss of the global batch (the mean over processes of the local means) while the gradient is that
of the local mean, so that after DDP's average over W processes the parameters get the global batch's
gradient (the convention of :mod:`contrastive_core.distributed`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastive_core.distributed import all_reduce_mean, world_size
from contrastive_core.engine import at_least_float32

__all__ = ["queue_info_nce"]


def queue_info_nce(
    queries: torch.Tensor,
    positive_keys: torch.Tensor,
    negative_keys: torch.Tensor,
    filled: torch.Tensor | int,
    temperature: float,
) -> torch.Tensor:
    """MoCo's InfoNCE (eq. 1) of ``queries`` against their positives and the filled rows of a queue.

    Args:
        queries: ``(B, d)`` q, with gradient; L2-normalised here, so the gradient flows through the
            normalisation.
        positive_keys: ``(B, d)`` k_+, row i the positive of query i; detached (keys get no gradient)
            and L2-normalised here (unit keys are left as they are).
        negative_keys: ``(K, d)`` the queue's keys, unit-norm, detached; only rows ``[0, filled)`` are
            used. Pass a snapshot (a clone) if the queue is written before the backward: the backward
            reads these keys.
        filled: 0-d long tensor (or int), the number of valid rows of ``negative_keys`` (the queue's
            ``fill``); the rows at and after it are masked.
        temperature: tau > 0.

    Returns:
        0-d: the mean of L_q over the global batch of queries, in float32 (float64 for float64 inputs),
        computed with autocast disabled.
    """
    if queries.ndim != 2 or queries.shape != positive_keys.shape:
        raise ValueError(
            f"queue_info_nce expects queries and positive keys of the same shape (B, d), got "
            f"{tuple(queries.shape)} and {tuple(positive_keys.shape)}"
        )
    if negative_keys.ndim != 2 or negative_keys.shape[1] != queries.shape[1]:
        raise ValueError(
            f"queue_info_nce expects negative keys (K, {queries.shape[1]}), got {tuple(negative_keys.shape)}"
        )
    with torch.autocast(device_type=queries.device.type, enabled=False):
        q = F.normalize(at_least_float32(queries), dim=1)
        k = F.normalize(positive_keys.detach().to(q.dtype), dim=1)
        negatives = negative_keys.detach().to(q.dtype)
        positive_logits = (q * k).sum(dim=1, keepdim=True)  # (B, 1): q_i . k_+i
        negative_logits = q @ negatives.T  # (B, K): q_i . k_j
        # Never-written rows are no negatives (a device comparison: no host synchronisation).
        unfilled = torch.arange(negatives.shape[0], device=q.device) >= filled  # (K,)
        negative_logits = negative_logits.masked_fill(unfilled, float("-inf"))
        logits = torch.cat([positive_logits, negative_logits], dim=1) / temperature  # (B, 1 + K)
        # The positive is class 0 of every row.
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        local_loss = F.cross_entropy(logits, labels)
    if world_size() == 1:
        return local_loss
    # The global-batch value with the local gradient: the detached difference shifts the value only.
    return local_loss + (all_reduce_mean(local_loss) - local_loss.detach())
