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

    #: Whether the op crops every image within its own extent, so that it can be the first op of a
    #: pipeline fed a padded canvas of images of different sizes (a
    #: :class:`~contrastive_core.components.dataset.VariableSizeSplit`'s batches). Such an op's
    #: ``forward`` also takes ``sizes``: int64 (B, 2), the ``(height, width)`` of image i in the
    #: top-left corner of the (B, C, H, W) canvas; it reads no pixel outside them, and its output has
    #: one size for the whole batch. Any other op would work on the padding as if it were image (a flip
    #: of the canvas moves the padding to the left), so it cannot come first.
    crops_within_sizes: ClassVar[bool] = False

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
