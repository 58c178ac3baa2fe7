"""Random solarization: invert the bright pixels of an image."""

from __future__ import annotations

from typing import Literal

import torch
from kornia.enhance import solarize
from pydantic import Field

from contrastive_core import ComponentParams

from ..fused_ops import select
from ._sampling import bernoulli
from .per_sample import PerSampleAugmentation


class SolarizeParams(ComponentParams):
    type: Literal["solarize"] = "solarize"
    p: float = Field(default=0.2, ge=0, le=1)
    """Probability that a sample is solarized (BYOL uses 0.0 for its first view and 0.2 for its second)."""
    threshold: float = Field(default=0.5, ge=0, le=1)
    """Pixels at or above this value x become 1 - x; darker pixels are kept."""


class Solarize(PerSampleAugmentation):
    """Solarize each image with probability p (default 0.2): pixels x >= threshold become 1 - x.

    Not part of SimCLR; BYOL (Grill et al., 2020, Appendix B, Table 6) adds it to its second view, and
    later contrastive methods reuse that pipeline. Input (B, C, H, W) in [0, 1] -> (B, C, H, W) in [0, 1].
    """

    name = "solarize"
    Params = SolarizeParams
    params: SolarizeParams

    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> ``applied``: (B,) bool, True for the samples to solarize."""
        return {"applied": bernoulli(self.params.p, batch_shape[0], device, generator)}

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return select(params["applied"], solarize(images, float(self.params.threshold)), images)
