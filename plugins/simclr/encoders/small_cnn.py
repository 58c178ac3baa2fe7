"""A small convolutional encoder that pretrains in minutes on a CPU, for the quickstart and tests.

It is a plain stack of conv-BN-ReLU blocks followed by global average pooling, the same shape of
network as a ResNet (Sec. 2.1 of Chen et al., 2020, takes h after the average pool) without the residual
blocks: 28x28 Fashion-MNIST or 32x32 CIFAR images need only a few downsampling steps.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from contrastive_core import Encoder, EncoderParams


class SmallCNNParams(EncoderParams):
    type: Literal["small_cnn"]

    widths: tuple[PositiveInt, ...] = Field((32, 64, 128), min_length=1)
    """Output channels of the hidden conv blocks. The first block keeps the resolution, every later block
    and the final block halve it (stride 2), so 28x28 inputs reach 4x4 with the default three widths."""

    feature_dim: PositiveInt = 128
    """Channels of the final conv block, i.e. the size of the representation h after average pooling."""

    in_channels: PositiveInt = 3
    """Channels of the input images: 3 for RGB, 1 for grayscale datasets such as Fashion-MNIST."""


class SmallCNN(Encoder):
    """Small conv-BN-ReLU encoder with average pooling; trains in minutes on a CPU (quickstart, tests)."""

    name = "small_cnn"
    Params = SmallCNNParams

    def __init__(self, params: SmallCNNParams) -> None:
        super().__init__(params)
        channels = [params.in_channels, *params.widths, params.feature_dim]
        blocks = [
            _conv_bn_relu(channels[i], channels[i + 1], stride=1 if i == 0 else 2)
            for i in range(len(channels) - 1)
        ]
        features = nn.Sequential(*blocks)
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._feature_dim = params.feature_dim

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> h: (B, feature_dim)."""
        return torch.flatten(self.pool(self.features(images)), 1)


def _conv_bn_relu(in_channels: int, out_channels: int, *, stride: int) -> nn.Sequential:
    """3x3 conv (no bias: the BatchNorm shift makes it redundant), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )
