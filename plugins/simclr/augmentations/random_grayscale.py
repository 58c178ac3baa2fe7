"""Random conversion of each image to grayscale, keeping its channel count."""

from __future__ import annotations

from typing import Literal

import torch
from kornia.color import rgb_to_grayscale
from pydantic import Field

from contrastive_core import ComponentParams

from ..fused_ops import select
from ._sampling import bernoulli
from .per_sample import PerSampleAugmentation


class RandomGrayscaleParams(ComponentParams):
    type: Literal["random_grayscale"] = "random_grayscale"
    p: float = Field(default=0.2, ge=0, le=1)
    """Probability that a sample is converted to grayscale."""


class RandomGrayscale(PerSampleAugmentation):
    """Convert each image to grayscale with probability p (default 0.2), keeping C channels.

    The "color drop" half of SimCLR's color distortion (Chen et al., 2020, Appendix A). The luma
    ``0.299 R + 0.587 G + 0.114 B`` is copied into every channel, so the encoder's input shape does not
    change. Input (B, C, H, W) with C = 3, or C = 1 (already gray: unchanged) -> output (B, C, H, W).
    """

    name = "random_grayscale"
    Params = RandomGrayscaleParams
    params: RandomGrayscaleParams

    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> ``applied``: (B,) bool, True for the samples to convert."""
        return {"applied": bernoulli(self.params.p, batch_shape[0], device, generator)}

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        channels = images.shape[1]
        if channels == 1:
            return images
        if channels != 3:
            raise ValueError(f"random_grayscale needs 1 or 3 channels, got {channels}")
        gray = rgb_to_grayscale(images).expand_as(images)
        return select(params["applied"], gray, images)
