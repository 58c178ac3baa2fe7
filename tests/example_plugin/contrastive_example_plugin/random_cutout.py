"""Random cutout (DeVries & Taylor, 2017, arXiv:1708.04552): zero one square patch per image."""

from typing import Literal

import torch
from pydantic import Field

from contrastive_core import Augmentation, ComponentParams


class RandomCutoutParams(ComponentParams):
    type: Literal["random_cutout"]
    size_fraction: float = Field(0.25, gt=0, le=1)
    """Side of the square patch as a fraction of the image's shorter side."""
    p: float = Field(0.5, ge=0, le=1)
    """Probability that an image gets a patch."""


class RandomCutout(Augmentation):
    """Zero a randomly placed square patch in each image, independently per sample."""

    name = "random_cutout"
    Params = RandomCutoutParams

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images: (B, C, H, W) float in [0, 1] -> same shape, a patch zeroed in about p of the images."""
        batch, _, height, width = images.shape
        side = max(1, round(self.params.size_fraction * min(height, width)))
        device = images.device
        # Patch centres are drawn per sample; the patch may be clipped by the border, as in the paper.
        centre_y = torch.randint(0, height, (batch, 1, 1), generator=generator, device=device)
        centre_x = torch.randint(0, width, (batch, 1, 1), generator=generator, device=device)
        apply = torch.rand(batch, 1, 1, generator=generator, device=device) < self.params.p
        rows = torch.arange(height, device=device)[None, :, None]
        cols = torch.arange(width, device=device)[None, None, :]
        inside = ((rows - centre_y).abs() <= side // 2) & ((cols - centre_x).abs() <= side // 2)
        return images.masked_fill((inside & apply)[:, None], 0.0)
