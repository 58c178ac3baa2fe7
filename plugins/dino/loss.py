"""DINO's loss: the cross-entropy from the teacher's distribution of each global view to the student's
distribution of every other view (Caron et al. 2021, arXiv:2104.14294, Sec. 3.1, eq. 2-3).

    P_t(x) = softmax((g_t(x) - c) / tau_t),   P_s(x') = softmax(g_s(x') / tau_s),
    L = mean over pairs (x in the global views, x' in all views, x' != x) of H(P_t(x), P_s(x')),

with H(a, b) = -sum_k a_k log b_k averaged over the batch. With 2 global and V local views there are
2 (2 + V) - 2 pairs, averaged with equal weight as in the reference code. The teacher side has no
gradient (a stop-gradient, Algorithm 1).
"""

from __future__ import annotations

import torch

__all__ = ["dino_loss"]


def dino_loss(teacher_probabilities: torch.Tensor, student_log_probabilities: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy over view pairs, a 0-d tensor.

    Args:
        teacher_probabilities: ``(G, B, K)``, P_t of the G global views (no gradient).
        student_log_probabilities: ``(V, B, K)``, log P_s of all V views, the G global ones first in the
            same order; V >= 2 (at least one pair).
    """
    global_views, batch, _ = teacher_probabilities.shape
    views = student_log_probabilities.shape[0]
    if views < global_views or student_log_probabilities.shape[1:] != teacher_probabilities.shape[1:]:
        raise ValueError(
            f"the student's views (V, B, K) must include the teacher's (G, B, K) first, got "
            f"{tuple(student_log_probabilities.shape)} and {tuple(teacher_probabilities.shape)}"
        )
    if views < 2:
        raise ValueError("DINO needs at least two views: one global view has no other view to predict")
    # cross[g, v] = mean_b H(P_t(x_g), P_s(x_v)) for every pair at once, one contraction over (b, k).
    cross = -torch.einsum("gbk,vbk->gv", teacher_probabilities, student_log_probabilities) / batch
    same_crop = torch.eye(global_views, views, dtype=torch.bool, device=cross.device)
    return cross.masked_fill(same_crop, 0.0).sum() / (global_views * views - global_views)
