"""A recipe's ordered ``[[augmentations]]`` list as one module that turns a batch into random views.

SimCLR (Chen et al., 2020, Sec. 2.1) draws two independent transformations ``t, t' ~ T`` per image
and trains on the pair of views ``t(x), t'(x)``; here ``T`` is the composition of the recipe's ops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .augmentation import Augmentation
from .build import build
from .component import ComponentParams
from .registry import Registry


class AugmentationPipeline(nn.Module):
    """Applies augmentation ops in order to a whole batch on its device.

    ``forward`` takes ``(B, C, H, W)`` uint8 (0-255, scaled to float32 in [0, 1]) or float (taken as
    already in [0, 1]) and returns one view ``(B, C, H', W')`` float. Every op draws its random
    parameters per sample from ``generator`` (which must live on the batch's device; None uses that
    device's default RNG), so a seeded generator reproduces the views exactly.
    """

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        super().__init__()
        self.augmentations = nn.ModuleList(augmentations)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images: (B, C, H, W) uint8 or float in [0, 1] -> one view (B, C, H', W') float."""
        return self._augment(to_unit_float(images), generator)

    def views(
        self, images: torch.Tensor, n_views: int = 2, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """``n_views`` independently augmented views of the batch, each (B, C, H', W') float."""
        if n_views < 1:
            raise ValueError(f"n_views must be at least 1, got {n_views}")
        # Converted once; the views then differ only by their random draws.
        images = to_unit_float(images)
        return [self._augment(images, generator) for _ in range(n_views)]

    def _augment(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for augmentation in self.augmentations:
            images = augmentation(images, generator)
        return images


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) uint8 -> float32 / 255; a float batch is returned as it is (assumed in [0, 1])."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (B, C, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    if images.is_floating_point():
        return images
    raise TypeError(f"expected uint8 or float images, got {images.dtype}")


def build_pipeline(
    augmentation_params_list: Iterable[Mapping[str, Any] | ComponentParams], registry: Registry | None = None
) -> AugmentationPipeline:
    """Build each op of a recipe's ``[[augmentations]]`` list (in order) into one pipeline.

    >>> pipeline = build_pipeline([{"type": "random_resized_crop", "size": 32}, {"type": "horizontal_flip"}])

    Each entry is a params dict (or validated params) for ``build("augmentation", ...)``; ``registry``
    defaults to the environment's plugins.
    """
    return AugmentationPipeline(
        [build("augmentation", params, registry=registry) for params in augmentation_params_list]
    )
