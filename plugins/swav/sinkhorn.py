"""Equal-partition codes by Sinkhorn-Knopp (Caron et al. 2020, arXiv:2006.09882, Sec. 3.1 and Appendix A.1).

SwAV maps the B samples of a batch to K prototypes with a code matrix Q (K x B) that maximises
``Tr(Q^T C^T Z) + epsilon H(Q)`` over the transportation polytope

    Q 1_B = (1 / K) 1_K,    Q^T 1_K = (1 / B) 1_B,

i.e. every prototype gets an equal share of the batch (which keeps the codes from collapsing onto one
prototype) and every sample a full unit of mass. The solution has the form
``Q = diag(u) exp(C^T Z / epsilon) diag(v)``, found by alternately rescaling the rows and the columns
of ``exp(scores / epsilon)`` (Cuturi 2013, "Sinkhorn Distances"); the paper runs 3 iterations with
epsilon = 0.05 and keeps the soft codes, scaled by B so that each sample's code sums to 1.

The sums run over the **global** batch: with W processes the row sums are all-reduced, so that W
processes holding B / W samples each compute exactly the codes one process holding all B would. A
queue's scores, the same on every process, join the columns once (they are not all-reduced, which
would count them W times). Everything here is a device computation without host synchronisation and
without gradient (the codes are targets).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from contrastive_core.distributed import all_reduce_with_grad, world_size
from contrastive_core.engine import at_least_float32

__all__ = ["sinkhorn_knopp"]


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor,
    *,
    epsilon: float = 0.05,
    iterations: int = 3,
    shared_scores: torch.Tensor | None = None,
) -> torch.Tensor:
    """The codes of this process's samples, ``(B, K)``, each row a distribution over the K prototypes.

    Args:
        scores: ``(B, K)``, this process's samples' scores against the prototypes (cosines, z^T c_k).
            Every process passes the same B.
        epsilon: the entropy weight; smaller is closer to a hard assignment (paper: 0.05).
        iterations: row-then-column rescalings (paper: 3).
        shared_scores: ``(Q, K)`` or None, scores that are the same on every process (a queue of earlier
            embeddings), which take part in the partition but whose codes are not returned.

    Returns:
        ``(B, K)`` in the dtype of ``scores`` promoted to at least float32; every row sums to 1 (up to
        rounding), and over the global batch with the shared rows each prototype's column sums to about
        ``(W B + Q) / K`` (exactly after many iterations).
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, K), got shape {tuple(scores.shape)}")
    if iterations < 1 or not epsilon > 0:
        raise ValueError(f"Sinkhorn needs iterations >= 1 and epsilon > 0, got {iterations} and {epsilon}")
    scores = at_least_float32(scores)
    shared = 0 if shared_scores is None else shared_scores.shape[0]
    if shared_scores is not None:
        scores = torch.cat([shared_scores.to(scores.dtype), scores])
    # The largest score over every process: exp() of scores shifted by it stays in (0, 1], which the
    # first normalisation cancels exactly (a common factor of every entry).
    peak = scores.max()
    if world_size() > 1:
        peak = peak.clone()
        dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    codes = torch.exp((scores - peak) / epsilon).T  # (K, Q + B): prototypes by samples
    prototypes = codes.shape[0]
    samples = scores.shape[0] - shared
    total_samples = samples * world_size() + shared

    def global_sum(local: torch.Tensor, shared_part: torch.Tensor) -> torch.Tensor:
        return all_reduce_with_grad(local) + shared_part

    codes /= global_sum(codes[:, shared:].sum(), codes[:, :shared].sum())
    for _ in range(iterations):
        rows = global_sum(
            codes[:, shared:].sum(dim=1, keepdim=True), codes[:, :shared].sum(dim=1, keepdim=True)
        )
        codes /= rows * prototypes  # each prototype's row: total mass 1 / K
        codes /= codes.sum(dim=0, keepdim=True) * total_samples  # each sample's column: 1 / (W B + Q)
    return (codes[:, shared:] * total_samples).T
