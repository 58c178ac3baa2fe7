"""What the augmentation tests share: seeded generators and a check of a sampled rate."""

from __future__ import annotations

import math

import torch


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_rate(mask: torch.Tensor, p: float) -> None:
    """The fraction of True in ``mask`` is ``p`` to within 5 binomial standard errors."""
    rate = mask.double().mean().item()
    assert abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / mask.numel()), f"rate {rate:.4f}, expected {p}"
