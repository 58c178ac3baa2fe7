"""The augmentation kind: one random image transform, applied to a whole batch on its device."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from .component import Component, ComponentParams


class Augmentation(Component, nn.Module):
    """One augmentation op of a recipe's ordered pipeline (``[[augmentations]]``).

    ``forward(images, generator)`` takes a float batch ``(B, C, H, W)`` with values in ``[0, 1]`` on any
    device and returns the transformed batch ``(B, C, H', W')`` on the same device. Random parameters are
    drawn **per sample** (each image gets its own crop, jitter factors, ...) on the batch's device, from
    ``generator`` when one is given, so a seeded generator makes the views reproducible.
    """

    kind: ClassVar[str] = "augmentation"

    def __init__(self, params: ComponentParams) -> None:
        nn.Module.__init__(self)
        self.params = params

    @abstractmethod
    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images: (B, C, H, W) float in [0, 1] -> (B, C, H', W') float, same device and dtype."""

    def undo_for_display(self, images: torch.Tensor) -> torch.Tensor | None:
        """The images as they were before this op, for ``contrastive preview``; None where it cannot be
        undone (random ops). A deterministic standardisation returns ``images * std + mean``."""
        return None
