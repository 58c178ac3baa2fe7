"""Selective-kernel ResNets of SimCLRv2 (R50/R101/R152 at width 1x-3x); h is the 2048*w-d average pool.

SimCLRv2 (Chen, Kornblith, Swersky, Norouzi & Hinton, 2020, "Big Self-Supervised Models are Strong
Semi-Supervised Learners", Sec. 2) makes its encoders deeper, wider and adds selective kernels (SK; Li,
Wang, Hu & Yang, 2019, "Selective Kernel Networks"). This module is a PyTorch rewrite of the variant in
the authors' code, google-research/simclr, read from ``tf2/resnet.py`` (classes ``SK_Conv2D``,
``BottleneckBlock``, ``BlockGroup``, ``Resnet`` and the function ``resnet``; the TF1 ``resnet.py``
functions ``sk_conv2d``, ``bottleneck_block`` and ``resnet_v1_generator`` build the same network). What
that code does when its ``sk_ratio`` flag is above 0 (its help text recommends 0.0625):

* **SK convolution** (``SK_Conv2D``), in place of the bottleneck's 3x3 conv. Both paths are *3x3*
  (the code says "both are 3x3"; there is no dilated or 5x5-equivalent path as in the SKNet paper),
  computed as one strided 3x3 conv with twice the output channels, then one BatchNorm + ReLU over all of
  them, then split in two halves along the channels (path 0 the first half). The attention: sum the two
  paths, global-average-pool, 1x1 conv (no bias) to ``max(int(width * sk_ratio), 32)`` channels,
  BatchNorm + ReLU, 1x1 conv (no bias) to ``2 * width`` logits, split like the paths, softmax over the
  two paths per channel; the output is the attention-weighted sum of the paths. No bias, no BN after the
  second 1x1 conv.
* **Bottleneck** (``BottleneckBlock``): 1x1 conv-BN-ReLU, SK conv (carrying the stride, as in ResNet
  v1.5), 1x1 conv to ``4 * width``-BN, add the shortcut, ReLU.
* **ResNet-D shortcut** (He et al., 2019, "Bag of Tricks", arXiv:1812.01187): the projection shortcut of
  the first block of every stage is a 2x2 average pool with the block's stride, then a stride-1 1x1
  conv-BN. With stride 2 the input is first padded by one zero row/column at the bottom/right and the
  pool counts that padding (TF "VALID" after ``FixedPadding(2)``), which only matters for odd sizes. With
  stride 1 (the first stage) the code still pools, 2x2 with stride 1 and TF "SAME" padding (one row and
  column at the bottom/right, excluded from the average), so that shortcut is a small blur; this module
  does the same.
* **Deep stem** (``Resnet``, also ResNet-D): three 3x3 convs with BN + ReLU after each, of ``32 * w``,
  ``32 * w`` and ``64 * w`` channels, the first with stride 2, then a 3x3 stride-2 max pool. The max
  pool here pads like torchvision's (one pixel on every side) where TF's "SAME" pads only the
  bottom/right: same output size, window grid one pixel apart on even sizes.
* **CIFAR stem** (``cifar_stem``, same in the code with or without SK): one 3x3 stride-1 conv of
  ``64 * w`` channels with BN + ReLU and no max pool.
* **Width multiplier** ``w``: every width (stem, bottleneck widths 64, 128, 256, 512, their 4x outputs)
  is multiplied by ``w``, so ``h`` has ``2048 * w`` dimensions. Blocks per stage as in the ``resnet``
  table: [3, 4, 6, 3], [3, 4, 23, 3], [3, 8, 36, 3].

Departures, to match this library's other ResNets rather than TF: initialisation as torchvision's
ResNet (Kaiming-normal fan-out convs; BatchNorm scale 1, shift 0) where TF uses a fan-in variance-scaling
initializer, and the last BN of each block starts at 0 only with ``zero_init_residual`` (the TF code
always does that); PyTorch's default BatchNorm momentum and epsilon (TF's epsilon is also 1e-5). Dropblock
and SE (off by default in the code) are not implemented. The parameter counts agree with those the
repository's README lists for SimCLRv2 Table 1, which count the encoder without a classifier (R50 1x + SK:
35.2 M for the table's 35, R152 3x + SK: 794.7 M for 795); the largest gap is R152 2x, 353.4 M for 354.

The weights are exported as this module's own ``state_dict`` (no other library has this layout).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from contrastive_core import Encoder

from .resnet import ResNetParams

#: The smallest width of the SK attention's bottleneck (``min_dim=32`` of the authors' ``SK_Conv2D``).
SK_MIN_DIM = 32

#: Bottleneck widths of the four stages at width multiplier 1; each stage outputs 4x its width.
_STAGE_WIDTHS = (64, 128, 256, 512)
_EXPANSION = 4


class SKConv2d(nn.Module):
    """Selective-kernel 3x3 conv of SimCLRv2: two 3x3 paths mixed by a per-channel softmax attention.

    ``x`` (B, C_in, H, W) -> (B, C_out, H', W'), with H' = ceil(H / stride) (padding 1). Both paths come
    from one conv with ``2 * C_out`` outputs and one BatchNorm + ReLU, split into path 0 (first half of the
    channels) and path 1. ``fixed_path`` (0 or 1; settable after construction) skips the attention and
    returns that path alone, which makes the layer a plain 3x3 conv-BN-ReLU (for tests and ablations).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        sk_ratio: float = 0.0625,
        min_dim: int = SK_MIN_DIM,
        fixed_path: int | None = None,
    ) -> None:
        super().__init__()
        if fixed_path not in (None, 0, 1):
            raise ValueError(f"fixed_path must be None, 0 or 1, not {fixed_path!r}")
        self.out_channels = out_channels
        self.fixed_path = fixed_path
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)
        hidden = max(int(out_channels * sk_ratio), min_dim)
        self.reduce = nn.Conv2d(out_channels, hidden, 1, bias=False)
        self.reduce_bn = nn.BatchNorm2d(hidden)
        self.expand = nn.Conv2d(hidden, 2 * out_channels, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def paths(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W) -> the two paths stacked, (B, 2, C_out, H', W')."""
        return self.relu(self.bn(self.conv(x))).unflatten(1, (2, self.out_channels))

    def attention(self, paths: torch.Tensor) -> torch.Tensor:
        """paths (B, 2, C_out, H', W') -> mixing weights (B, 2, C_out, 1, 1), a softmax over dim 1.

        Training-mode BatchNorm of the pooled (B, hidden, 1, 1) features needs B >= 2, as in TF.
        """
        pooled = paths.sum(dim=1).mean(dim=(2, 3), keepdim=True)  # (B, C_out, 1, 1)
        logits = self.expand(self.relu(self.reduce_bn(self.reduce(pooled))))  # (B, 2 * C_out, 1, 1)
        return logits.unflatten(1, (2, self.out_channels)).softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W) -> (B, C_out, H', W'): the attention-weighted sum of the two paths."""
        paths = self.paths(x)
        if self.fixed_path is not None:
            return paths[:, self.fixed_path]
        return (paths * self.attention(paths)).sum(dim=1)


class AvgPoolShortcutPool(nn.Module):
    """The 2x2 average pool of the ResNet-D projection shortcut, padded as the TF reference pads it.

    (B, C, H, W) -> (B, C, ceil(H / stride), ceil(W / stride)). Stride 1: TF "SAME", one row and column
    past the bottom/right edge that the average leaves out. Stride 2: one zero row and column at the
    bottom/right that the average counts (TF "VALID" after padding), only reached on odd sizes.
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride}")
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            # Symmetric padding 1 gives H + 1 windows; dropping the first leaves windows x[i:i + 2].
            return F.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)[..., 1:, 1:]
        return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, stride=2)


class SKBottleneck(nn.Module):
    """relu(bn3(conv1x1(sk(relu(bn1(conv1x1(x)))))) + shortcut(x)), with sk an :class:`SKConv2d`.

    (B, C_in, H, W) -> (B, 4 * width, H / stride, W / stride). ``projection`` (the first block of a
    stage) makes the shortcut the ResNet-D average pool, 1x1 conv and BN; otherwise it is the identity.
    """

    def __init__(
        self, in_channels: int, width: int, stride: int, *, sk_ratio: float, projection: bool
    ) -> None:
        super().__init__()
        out_channels = _EXPANSION * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.sk = SKConv2d(width, width, stride, sk_ratio=sk_ratio)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if projection:
            self.shortcut = nn.Sequential(
                AvgPoolShortcutPool(stride),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        elif stride != 1 or in_channels != out_channels:
            raise ValueError("a block that changes the shape needs the projection shortcut")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.sk(out)))
        return self.relu(out + self.shortcut(x))


class SKResNetParams(ResNetParams):
    """Parameters shared by the SK-ResNet encoders (each encoder adds its own ``type``)."""

    cifar_stem: bool = False
    """Replace the three-conv stride-2 stem and its max-pool by one 3x3 stride-1 conv (64 * w channels) and
    no max-pool, as SimCLR does for 32x32 CIFAR images (Chen et al., 2020, Appendix B.9; the SimCLRv2
    code's ``cifar_stem``); keeps small images from shrinking 4x at once."""

    width_multiplier: Literal[1, 2, 3] = 1
    """Multiplies every channel width, so h has 2048 * w dimensions: SimCLRv2's 1x, 2x and 3x networks
    (Chen et al., 2020b, Sec. 2 and Table 1; the code's ``width_multiplier``)."""

    sk_ratio: float = Field(0.0625, gt=0, le=1)
    """Width of the SK attention's bottleneck as a fraction of the conv's width, at least 32 channels:
    SimCLRv2's selective kernels (Chen et al., 2020b, Sec. 2; Li et al., 2019), 0.0625 as the code's
    ``sk_ratio`` help text recommends."""


class SKResNetEncoder(Encoder):
    """Base of the SK-ResNet encoders; the subclasses set ``blocks``. Not registered itself."""

    #: Bottleneck blocks per stage, e.g. (3, 4, 6, 3) for the 50-layer network.
    blocks: ClassVar[tuple[int, int, int, int]]

    def __init__(self, params: SKResNetParams) -> None:
        super().__init__(params)
        w = params.width_multiplier
        stem_channels = 64 * w
        if params.cifar_stem:
            self.stem = nn.Sequential(*_conv_bn_relu(params.in_channels, stem_channels, stride=1))
        else:
            self.stem = nn.Sequential(
                *_conv_bn_relu(params.in_channels, stem_channels // 2, stride=2),
                *_conv_bn_relu(stem_channels // 2, stem_channels // 2, stride=1),
                *_conv_bn_relu(stem_channels // 2, stem_channels, stride=1),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        channels = stem_channels
        for index, (base_width, count) in enumerate(zip(_STAGE_WIDTHS, type(self).blocks, strict=True)):
            width = base_width * w
            stage = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(
                    SKBottleneck(channels, width, stride, sk_ratio=params.sk_ratio, projection=block == 0)
                )
                channels = _EXPANSION * width
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._feature_dim = channels
        self._initialise(zero_init_residual=params.zero_init_residual)

    def _initialise(self, *, zero_init_residual: bool) -> None:
        """torchvision's ResNet initialisation; no tensor values are read, so it runs on the meta device."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, SKBottleneck):
                    nn.init.zeros_(module.bn3.weight)

    @property
    def feature_dim(self) -> int:
        """2048 * width_multiplier."""
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> h: (B, 2048 * width_multiplier)."""
        x = self.stem(images)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


def _conv_bn_relu(in_channels: int, out_channels: int, *, stride: int) -> list[nn.Module]:
    """A 3x3 conv (padding 1, no bias), BatchNorm and ReLU: one layer of the stems."""
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SKResNet50Params(SKResNetParams):
    type: Literal["sk_resnet50"]


class SKResNet50(SKResNetEncoder):
    """SimCLRv2's ResNet-50 with selective kernels (SK bottlenecks [3, 4, 6, 3]); h has 2048 * w dimensions."""

    name = "sk_resnet50"
    Params = SKResNet50Params
    blocks = (3, 4, 6, 3)


class SKResNet101Params(SKResNetParams):
    type: Literal["sk_resnet101"]


class SKResNet101(SKResNetEncoder):
    """SimCLRv2's ResNet-101 with selective kernels (SK bottlenecks [3, 4, 23, 3]); h has 2048 * w dimensions."""

    name = "sk_resnet101"
    Params = SKResNet101Params
    blocks = (3, 4, 23, 3)


class SKResNet152Params(SKResNetParams):
    type: Literal["sk_resnet152"]


class SKResNet152(SKResNetEncoder):
    """SimCLRv2's ResNet-152 with selective kernels (SK bottlenecks [3, 8, 36, 3]); h has 2048 * w dimensions."""

    name = "sk_resnet152"
    Params = SKResNet152Params
    blocks = (3, 8, 36, 3)


SK_RESNET_ENCODERS: list[type[SKResNetEncoder]] = [SKResNet50, SKResNet101, SKResNet152]
