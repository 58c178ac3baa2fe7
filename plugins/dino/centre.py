"""DINO's centre: an EMA of the teacher's mean output over the global batch (Caron et al. 2021,
arXiv:2104.14294, Sec. 3.1, eq. 4 and Algorithm 1).

Centring the teacher's logits by c (and sharpening them with a low temperature) is what keeps DINO from
collapsing without a predictor or negatives: centring alone pushes towards a uniform output, sharpening
alone towards one dimension, and together they balance. In every step, once the loss has used it,

    c <- m c + (1 - m) (1 / B) sum_i g_theta_t(x_i),

over the B teacher outputs of the *global* batch (the reference code all-reduces the sum and divides by
the global count), with m = 0.9. The centre is a buffer: checkpointed, and the same on every process.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastive_core.distributed import all_reduce_with_grad, world_size

__all__ = ["Centre"]


class Centre(nn.Module):
    """``value``: ``(K,)`` buffer, zeros at the start; :meth:`update` moves it towards a batch's mean."""

    value: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("value", torch.zeros(dim))

    @torch.no_grad()
    def update(self, teacher_outputs: torch.Tensor, momentum: float) -> None:
        """``teacher_outputs``: ``(N, K)``, this process's teacher logits (every global view); every process
        passes the same N. Device operations only, no host synchronisation."""
        total = all_reduce_with_grad(teacher_outputs.sum(dim=0).to(self.value.dtype))
        mean = total / (teacher_outputs.shape[0] * world_size())
        self.value.mul_(momentum).add_(mean, alpha=1.0 - momentum)
