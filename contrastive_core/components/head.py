"""The head kind: the projection g(.) that maps representations to the space the loss compares in."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from .component import Component, ComponentParams


class Head(Component, nn.Module):
    """Projection head g: ``h (B, in_dim)`` -> ``z (B, out_dim)``; built with the encoder's ``in_dim``.

    SimCLR (Chen et al., 2020, Sec. 2.1): g(h) = W2 ReLU(W1 h); the loss is computed on z, the
    representation kept after pretraining is h.
    """

    kind: ClassVar[str] = "head"

    def __init__(self, params: ComponentParams, in_dim: int) -> None:
        nn.Module.__init__(self)
        self.params = params
        self.in_dim = in_dim

    @property
    @abstractmethod
    def out_dim(self) -> int:
        """Size of the projection z."""

    @abstractmethod
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, in_dim) -> z: (B, out_dim)."""
