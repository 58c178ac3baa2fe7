"""Per-sample random draws shared by the augmentation ops.

Every draw is made on the batch's device from the caller's ``generator`` (the default RNG of that device
when it is None), so a seeded generator reproduces a pipeline's views exactly and no parameter has to
travel between host and device.
"""

from __future__ import annotations

import torch


def uniform(
    low: float, high: float, size: tuple[int, ...], device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """Float32 samples of U(low, high) with shape ``size``."""
    return low + (high - low) * torch.rand(size, generator=generator, device=device)


def bernoulli(p: float, batch: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """(batch,) bool: True with probability ``p``, independently per sample (whether an op is applied)."""
    return torch.rand(batch, generator=generator, device=device) < p
