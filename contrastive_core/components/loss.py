"""The loss kind: a self-supervised objective over the projections of two views of one batch."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from .component import Component, ComponentParams


class Loss(Component, nn.Module):
    """Called as ``loss(z_a, z_b)`` with the projections of view a and view b, each ``(B, d)``.

    Row i of ``z_a`` and row i of ``z_b`` come from the same image (the positive pair). Returns a scalar.
    A loss that needs negatives from other processes gathers them itself, differentiably.
    """

    kind: ClassVar[str] = "loss"

    def __init__(self, params: ComponentParams) -> None:
        nn.Module.__init__(self)
        self.params = params

    @abstractmethod
    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """z_a, z_b: (B, d) -> scalar loss."""
