"""Per-channel standardisation, the deterministic last step of a pipeline."""

from __future__ import annotations

from typing import Literal

import torch
from kornia.enhance import normalize
from pydantic import model_validator

from contrastive_core import ComponentParams

from .per_sample import PerSampleAugmentation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class NormalizeParams(ComponentParams):
    type: Literal["normalize"] = "normalize"
    mean: tuple[float, ...] = IMAGENET_MEAN
    """Per-channel mean subtracted from the image (default: ImageNet's RGB mean)."""
    std: tuple[float, ...] = IMAGENET_STD
    """Per-channel standard deviation the image is divided by (default: ImageNet's RGB std)."""

    @model_validator(mode="after")
    def _check_channels(self) -> NormalizeParams:
        if not self.mean or len(self.mean) != len(self.std):
            raise ValueError(
                f"mean and std need one value per channel, got {len(self.mean)} and {len(self.std)}"
            )
        if any(value <= 0 for value in self.std):
            raise ValueError(f"std values must be positive, got {self.std}")
        return self


class Normalize(PerSampleAugmentation):
    """Subtract a per-channel mean and divide by a per-channel std (defaults: ImageNet statistics).

    ``out[:, c] = (images[:, c] - mean[c]) / std[c]``; deterministic, so :meth:`sample_params` draws
    nothing. Put it last: the output is no longer in [0, 1]. Input (B, C, H, W) with C = len(mean) ->
    output (B, C, H, W).
    """

    name = "normalize"
    Params = NormalizeParams
    params: NormalizeParams

    def __init__(self, params: NormalizeParams) -> None:
        super().__init__(params)
        # Buffers follow the module to a device; not persistent because they come from the params.
        self.register_buffer("mean", torch.tensor(params.mean), persistent=False)
        self.register_buffer("std", torch.tensor(params.std), persistent=False)

    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        return {}

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        channels = images.shape[1]
        if channels != len(self.params.mean):
            raise ValueError(
                f"normalize has {len(self.params.mean)} channel statistics but the images have "
                f"{channels} channels; set mean and std with one value per channel"
            )
        # No-ops when the pipeline was already moved to the images' device.
        mean = self.mean.to(images.device, images.dtype)
        std = self.std.to(images.device, images.dtype)
        return normalize(images, mean, std)

    def undo_for_display(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) standardised views -> the pixels before this op: ``images * std + mean``."""
        mean = self.mean.to(images.device, images.dtype).view(1, -1, 1, 1)
        std = self.std.to(images.device, images.dtype).view(1, -1, 1, 1)
        return images * std + mean
