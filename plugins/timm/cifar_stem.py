"""The CIFAR stem on a timm ResNet: a 3x3 stride-1 convolution and no max-pool (SimCLR, Appendix B.9).

timm's standard ResNet stem (a 7x7 stride-2 convolution, then a 3x3 stride-2 max-pool) shrinks an image
4x before the first block, which leaves a 32x32 CIFAR image 8x8; SimCLR (Chen et al., 2020, Appendix
B.9) replaces it for CIFAR-10, as the ``resnet*`` encoders' ``cifar_stem`` does for torchvision's. Only
timm's ResNets with that single-convolution stem get it: the deep stems of ``resnet50d``,
``resnet26t`` and the like are three convolutions that a CIFAR variant would change otherwise.
"""

from __future__ import annotations

from torch import nn

#: What cifar_stem needs, for messages.
SUPPORTED = (
    "a timm ResNet with the standard stem (a single 7x7 stride-2 conv1 and a max-pool): resnet18, "
    "resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, resnext50_32x4d, ..."
)


def cifar_stem_problem(model: nn.Module) -> str | None:
    """Why ``model`` (a timm network) cannot take the CIFAR stem, or None when it can."""
    from timm.models import ResNet

    if not isinstance(model, ResNet):
        return f"it is a timm {type(model).__name__}, and cifar_stem is for {SUPPORTED}"
    if not isinstance(model.conv1, nn.Conv2d) or not isinstance(model.maxpool, nn.MaxPool2d):
        return (
            f"its stem is not the standard one (a deep or replaced stem), and cifar_stem is for {SUPPORTED}"
        )
    return None


def use_cifar_stem(model: nn.Module, in_channels: int) -> None:
    """Replace ``model.conv1`` by a 3x3 stride-1 conv of the same width and drop the max-pool, in place.

    The new conv is initialised as timm initialises its ResNets' convolutions (Kaiming normal, fan-out).
    """
    width = model.conv1.out_channels
    conv = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    model.conv1 = conv
    model.maxpool = nn.Identity()
