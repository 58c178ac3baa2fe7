"""SwAV's swapped prediction over multi-crop views (Caron et al. 2020, arXiv:2006.09882, eq. 1-2, Sec. 3.2).

The code of one view is predicted from every other view of the same image. For a view with scores
``s = C^T z`` (cosines to the K prototypes) and the code ``q`` of another view,

    l(z, q) = - sum_k q_k log p_k,    p = softmax(s / tau),

with tau = 0.1. Codes are computed for the two global views only (the small crops are never targets:
Sec. 3.2, "we compute codes using only the full resolution crops"); each code is predicted by all V - 1
other views, those losses averaged, and the two codes' terms averaged:

    L = (1 / A) sum_{a < A} (1 / (V - 1)) sum_{v != a} mean_b l(z_{v,b}, q_{a,b}),

where A = 2 is the number of views with codes and V the number of views in all. With two views this
is (l(z_1, q_2) + l(z_2, q_1)) / 2, the swapped loss of eq. 1 halved. The mean over the local batch
b is the global mean once data parallelism averages the gradients over processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["swapped_prediction_loss"]


def swapped_prediction_loss(
    scores: torch.Tensor, codes: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """The loss L of the module docstring, a 0-d tensor.

    Args:
        scores: ``(V, B, K)``, every view's scores against the prototypes; views ``0 .. A - 1`` are the
            ones the codes were computed from.
        codes: ``(A, B, K)``, the codes (targets, without gradient) of views ``0 .. A - 1``, 1 <= A <= V,
            V >= 2.
        temperature: tau of the softmax (paper: 0.1).
    """
    views, batch, _ = scores.shape
    coded = codes.shape[0]
    if views < 2 or not 1 <= coded <= views or codes.shape[1:] != scores.shape[1:]:
        raise ValueError(
            f"swapped prediction needs scores (V, B, K) with V >= 2 and codes (A, B, K) with 1 <= A <= V, "
            f"got {tuple(scores.shape)} and {tuple(codes.shape)}"
        )
    log_probabilities = F.log_softmax(scores / temperature, dim=-1)  # (V, B, K)
    # cross[a, v] = mean_b l(z_{v,b}, q_{a,b}), every pair at once: (A, V).
    cross = -torch.einsum("abk,vbk->av", codes, log_probabilities) / batch
    own = torch.diagonal(cross[:, :coded])  # a view predicting its own code: left out
    return ((cross.sum(dim=1) - own) / (views - 1)).mean()
