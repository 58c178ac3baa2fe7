"""The encoder kind: the network f(.) whose representation h = f(x) is what pretraining is for."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..errors import Problem
from .component import Component, ComponentParams
from .external_model import ExternalModel


class EncoderParams(ComponentParams):
    """Base of the encoders' params: the fields every encoder has, handled by the engine, not the encoder.

    Derive an encoder's ``Params`` from it (rather than from :class:`ComponentParams`) and the encoder
    accepts ``init`` in recipes with nothing to implement.
    """

    init: str | None = None
    """A local weights file to start from instead of the random initialisation: an exported encoder (its
    folder or encoder.safetensors) or a torchvision or timm checkpoint (.pth, .pt, .bin, .safetensors).
    Its classifier is dropped; nothing is downloaded. Not applied when an exported encoder is loaded
    back (see docs/components/encoders.md)."""

    def recipe_warnings(self) -> list[Problem]:
        """An ``init`` file that is not there (yet): the run would stop when it builds the encoder."""
        if self.init is None or Path(self.init).expanduser().exists():
            return []
        looked = Path(self.init).expanduser().resolve()
        return [
            Problem(
                "init",
                f"no such file or folder (looked for {looked}); the run stops when it builds the encoder",
            )
        ]


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

    def external_models(self) -> dict[str, ExternalModel]:
        """This encoder as other libraries' networks, by ``contrastive export`` format name
        (``"torchvision"``, ``"timm"``): none by default. An encoder that is exactly some library's
        architecture (a torchvision ResNet) returns it here, with that library's key names."""
        return {}
