"""A small residual encoder for 28-32 px images that pretrains well in minutes on a CPU (the quickstart).

The shape of a ResNet (He et al., 2016; SimCLR takes h after its average pool, Chen et al., 2020,
Sec. 2.1) shrunk for small images and a small budget: a stride-2 3x3 stem, then one stage of basic
residual blocks per width, each stage after the first halving the resolution, then global average
pooling. With the default widths (32, 64, 128) a 28x28 image goes 14x14 -> 7x7 -> 4x4.

Why not full resolution: the stride-2 stem works on a quarter of the pixels, so a few minutes of a
2-core CPU buy several epochs, and there more epochs beat more pixels (measured with a plain reference
script on the same machine).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from contrastive_core import Encoder, EncoderParams


class SmallResNetParams(EncoderParams):
    type: Literal["small_resnet"]

    widths: tuple[PositiveInt, ...] = Field((32, 64, 128), min_length=1)
    """Channels of the stages. The stem (3x3 conv, stride 2) makes widths[0] channels; every stage after
    the first halves the resolution. The last width is the size of the representation h."""

    blocks_per_stage: PositiveInt = 1
    """Basic residual blocks (two 3x3 convs and a shortcut) per stage."""

    in_channels: PositiveInt = 3
    """Channels of the input images: 3 for RGB, 1 for grayscale datasets such as Fashion-MNIST."""

    zero_init_residual: bool = False
    """Start each block's last BatchNorm scale at 0, so every block begins as the identity (Goyal et
    al., 2017), as the ResNets' option of the same name does."""


class SmallResNet(Encoder):
    """Small ResNet (stride-2 stem, one basic block per stage) with average pooling; for 28-32 px images on a CPU."""

    name = "small_resnet"
    Params = SmallResNetParams

    def __init__(self, params: SmallResNetParams) -> None:
        super().__init__(params)
        widths = params.widths
        self.stem = nn.Sequential(
            nn.Conv2d(params.in_channels, widths[0], kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        channels = widths[0]
        for index, width in enumerate(widths):
            for block in range(params.blocks_per_stage):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(channels, width, stride, zero_init=params.zero_init_residual))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._feature_dim = widths[-1]

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> h: (B, widths[-1])."""
        return torch.flatten(self.pool(self.stages(self.stem(images))), 1)


class BasicBlock(nn.Module):
    """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)); the shortcut is a strided 1x1 conv + BN when
    the block changes the resolution or the channels, else the identity. (B, C_in, H, W) -> (B, C_out,
    H / stride, W / stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, zero_init: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if zero_init:
            nn.init.zeros_(self.bn2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
