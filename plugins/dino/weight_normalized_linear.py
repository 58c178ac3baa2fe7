"""A bias-free linear layer whose rows are weight-normalised (Salimans & Kingma 2016): W = g * v / ||v||.

DINO's last head layer (Caron et al. 2021, Sec. 3.1 and Appendix: "a weight normalized fully connected
layer") maps the L2-normalised bottleneck to K = 65,536 logits. Its per-row scale g is fixed to 1 by
default (the reference code's ``norm_last_layer``: every logit is then a cosine, which stabilises
training), or learnt.

Written out instead of with ``torch.nn.utils.parametrizations.weight_norm``, so that the two tensors are
plain parameters: a deep copy (the teacher), a state dict and a freeze by gradient cancellation all see
exactly ``direction`` and ``scale``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WeightNormalizedLinear"]


class WeightNormalizedLinear(nn.Module):
    """``forward(x)``: ``(N, in_features)`` -> ``(N, out_features)``, ``x @ (g * v / ||v||_row)^T``.

    ``direction``: v, ``(out, in)``, initialised like ``nn.Linear``'s weight; ``scale``: g, ``(out, 1)``,
    a parameter initialised to 1 when ``learn_scale``, else absent (g = 1).
    """

    def __init__(self, in_features: int, out_features: int, *, learn_scale: bool) -> None:
        super().__init__()
        self.direction = nn.Parameter(
            nn.Linear(in_features, out_features, bias=False).weight.detach().clone()
        )
        self.scale = nn.Parameter(torch.ones(out_features, 1)) if learn_scale else None

    def weight(self) -> torch.Tensor:
        """The effective weight ``(out, in)``."""
        weight = F.normalize(self.direction, dim=1)
        return weight if self.scale is None else weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight())

    def extra_repr(self) -> str:
        out_features, in_features = self.direction.shape
        return f"in_features={in_features}, out_features={out_features}, learn_scale={self.scale is not None}"
