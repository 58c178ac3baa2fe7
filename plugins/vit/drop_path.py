"""Stochastic depth ("drop path"): drop a residual branch for whole samples during training.

Huang et al. (2016), "Deep Networks with Stochastic Depth", drop entire residual branches at random
while training so that the network trains as an ensemble of shallower ones. DeiT (Touvron et al. 2021)
and DINO (Caron et al. 2021) apply it per sample inside every transformer block, with a rate that rises
linearly from 0 at the first block to ``drop_path_rate`` at the last.
"""

from __future__ import annotations

import torch
from torchvision.ops import StochasticDepth


class DropPath(StochasticDepth):
    """Zero a residual branch's output for a random ``rate`` fraction of the samples (training only).

    The surviving samples are scaled by ``1 / (1 - rate)`` so that the branch's expected output is the
    same in training and in evaluation, where the module is the identity.
    (B, ...) -> (B, ...): one keep/drop decision per sample, shared by all its tokens and channels.

    A ``torchvision.ops.StochasticDepth`` (its ``p`` is :attr:`rate`), so that code which recognises
    stochastic depth finds this one too: DINO builds its teacher without it.
    """

    def __init__(self, rate: float) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
        super().__init__(p=rate, mode="row")

    @property
    def rate(self) -> float:
        """The fraction of samples whose branch is dropped (torchvision's ``p``)."""
        return self.p

    def forward(self, branch: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return branch
        keep_prob = 1 - self.rate
        # One Bernoulli draw per sample, broadcast over every other dimension.
        shape = (branch.shape[0],) + (1,) * (branch.ndim - 1)
        keep = torch.empty(shape, dtype=branch.dtype, device=branch.device).bernoulli_(keep_prob)
        # Divided element by element: a bf16 factor 1 / keep_prob would bias every sample alike.
        return branch.div(keep_prob) * keep

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"
