"""torchvision ResNets (He et al., 2016) as SimCLR encoders: h is the 512- or 2048-d average-pooled output.

SimCLR (Chen et al., 2020, Sec. 2.1) takes the representation h = f(x) right after the final average
pooling layer, so the classifier ``fc`` is replaced by the identity. The networks are always built
with random weights: self-supervised pretraining starts from scratch and nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import torch
import torchvision
from pydantic import Field
from torch import nn

from contrastive_core import Encoder, EncoderParams, ExternalModel

from .export import resnet_external_models, torchvision_state_dict

#: Output channels of every torchvision ResNet stem.
_STEM_CHANNELS = 64


class ResNetParams(EncoderParams):
    """Parameters shared by every ResNet encoder (each encoder adds its own ``type``)."""

    cifar_stem: bool = False
    """Replace the 7x7 stride-2 stem conv by a 3x3 stride-1 conv and drop the max-pool, as SimCLR does for
    32x32 CIFAR images (Chen et al., 2020, Appendix B.9); keeps small images from shrinking 4x at once."""

    zero_init_residual: bool = False
    """Start the last BatchNorm scale (gamma) of every residual block at 0, so each block begins as the
    identity. SimCLR's reference ResNet does this; False keeps torchvision's default initialisation."""

    in_channels: int = Field(3, ge=1)
    """Channels of the input images: 3 for RGB, 1 for grayscale datasets such as Fashion-MNIST."""


class ResNetEncoder(Encoder):
    """Base of the ResNet encoders: a torchvision ResNet with ``fc`` removed. Not registered itself."""

    #: The torchvision constructor, e.g. ``torchvision.models.resnet50``.
    torchvision_builder: ClassVar[Callable[..., torchvision.models.ResNet]]

    def __init__(self, params: ResNetParams) -> None:
        super().__init__(params)
        backbone = type(self).torchvision_builder(weights=None, zero_init_residual=params.zero_init_residual)
        self._feature_dim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        if params.cifar_stem:
            backbone.conv1 = _stem_conv(params.in_channels, kernel_size=3, stride=1, padding=1)
            backbone.maxpool = nn.Identity()
        elif params.in_channels != 3:
            backbone.conv1 = _stem_conv(params.in_channels, kernel_size=7, stride=2, padding=3)
        self.backbone = backbone

    @property
    def feature_dim(self) -> int:
        """512 for ResNet-18/34, 2048 for ResNet-50/101/152 and wide ResNet-50-2."""
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> h: (B, feature_dim)."""
        return self.backbone(images)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights keyed as torchvision's ResNet without ``fc``; see :func:`torchvision_state_dict`."""
        return torchvision_state_dict(self)

    def load_exported_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`export_state_dict`: load torchvision-keyed weights (strict, no ``fc``)."""
        self.backbone.load_state_dict(state, strict=True)

    def external_models(self) -> dict[str, ExternalModel]:
        """torchvision's ResNet of this name, and timm's (the same keys); see :func:`resnet_external_models`."""
        return resnet_external_models(self)


def _stem_conv(in_channels: int, *, kernel_size: int, stride: int, padding: int) -> nn.Conv2d:
    """A replacement ``conv1``, initialised like torchvision initialises the convolution it replaces."""
    conv = nn.Conv2d(in_channels, _STEM_CHANNELS, kernel_size, stride=stride, padding=padding, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class ResNet18Params(ResNetParams):
    type: Literal["resnet18"]


class ResNet18(ResNetEncoder):
    """ResNet-18 (basic blocks [2, 2, 2, 2]); h has 512 dimensions."""

    name = "resnet18"
    Params = ResNet18Params
    torchvision_builder = staticmethod(torchvision.models.resnet18)


class ResNet34Params(ResNetParams):
    type: Literal["resnet34"]


class ResNet34(ResNetEncoder):
    """ResNet-34 (basic blocks [3, 4, 6, 3]); h has 512 dimensions."""

    name = "resnet34"
    Params = ResNet34Params
    torchvision_builder = staticmethod(torchvision.models.resnet34)


class ResNet50Params(ResNetParams):
    type: Literal["resnet50"]


class ResNet50(ResNetEncoder):
    """ResNet-50 (bottleneck blocks [3, 4, 6, 3]), SimCLR's standard encoder; h has 2048 dimensions."""

    name = "resnet50"
    Params = ResNet50Params
    torchvision_builder = staticmethod(torchvision.models.resnet50)


class ResNet101Params(ResNetParams):
    type: Literal["resnet101"]


class ResNet101(ResNetEncoder):
    """ResNet-101 (bottleneck blocks [3, 4, 23, 3]); h has 2048 dimensions."""

    name = "resnet101"
    Params = ResNet101Params
    torchvision_builder = staticmethod(torchvision.models.resnet101)


class ResNet152Params(ResNetParams):
    type: Literal["resnet152"]


class ResNet152(ResNetEncoder):
    """ResNet-152 (bottleneck blocks [3, 8, 36, 3]); h has 2048 dimensions."""

    name = "resnet152"
    Params = ResNet152Params
    torchvision_builder = staticmethod(torchvision.models.resnet152)


class WideResNet50x2Params(ResNetParams):
    type: Literal["wide_resnet50_2"]


class WideResNet50x2(ResNetEncoder):
    """Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016): ResNet-50 with bottlenecks twice as wide; h has 2048 dimensions."""

    name = "wide_resnet50_2"
    Params = WideResNet50x2Params
    torchvision_builder = staticmethod(torchvision.models.wide_resnet50_2)


RESNET_ENCODERS: list[type[ResNetEncoder]] = [
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
    ResNet152,
    WideResNet50x2,
]
