"""Random left-right mirror of each image."""

from __future__ import annotations

from typing import Literal

import torch
from kornia.geometry.transform import hflip
from pydantic import Field

from contrastive_core import ComponentParams

from ..fused_ops import select
from ._sampling import bernoulli
from .per_sample import PerSampleAugmentation


class HorizontalFlipParams(ComponentParams):
    type: Literal["horizontal_flip"] = "horizontal_flip"
    p: float = Field(default=0.5, ge=0, le=1)
    """Probability that a sample is mirrored."""


class HorizontalFlip(PerSampleAugmentation):
    """Mirror each image left-right with probability p (default 0.5).

    Part of SimCLR's crop augmentation (Chen et al., 2020, Appendix A: "random crop ... with random
    flip"). Input (B, C, H, W) -> output (B, C, H, W); a flipped sample is ``images[b].flip(-1)``.
    """

    name = "horizontal_flip"
    Params = HorizontalFlipParams
    params: HorizontalFlipParams

    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> ``applied``: (B,) bool, True for the samples to mirror."""
        return {"applied": bernoulli(self.params.p, batch_shape[0], device, generator)}

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return select(params["applied"], hflip(images), images)
