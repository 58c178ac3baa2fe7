"""The encoder kind: the network f(.) whose representation h = f(x) is what pretraining is for."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import nn

from .component import Component, ComponentParams


class Encoder(Component, nn.Module):
    """Base encoder f: images ``(B, C, H, W)`` -> representations ``h`` of shape ``(B, feature_dim)``.

    SimCLR (Chen et al., 2020, Sec. 2.1) takes ``h`` after the average pooling layer of a ResNet; the
    classifier is not part of the encoder.
    """

    kind: ClassVar[str] = "encoder"

    def __init__(self, params: ComponentParams) -> None:
        nn.Module.__init__(self)
        self.params = params

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """Size d of the representation h (512 for ResNet-18/34, 2048 for ResNet-50 and larger)."""

    @abstractmethod
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W) float -> h: (B, feature_dim)."""

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as written to ``encoder.safetensors``.

        Encoders wrapping a well-known architecture override this to use its plain key names (a
        torchvision ResNet state dict), so the file loads into that architecture without this library.
        """
        return self.state_dict()

    def load_exported_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`export_state_dict` (strict: every key must match)."""
        self.load_state_dict(state, strict=True)
