"""SimCLR encoders f(.): torchvision ResNets and two small CPU-friendly ones; weight export for downstream use."""

from .export import torchvision_state_dict
from .resnet import RESNET_ENCODERS, ResNetEncoder, ResNetParams
from .small_cnn import SmallCNN
from .small_resnet import SmallResNet

#: Every encoder the SimCLR plugin set registers (plugin.py returns this list).
ENCODERS: list[type] = [*RESNET_ENCODERS, SmallCNN, SmallResNet]

__all__ = [
    "ENCODERS",
    "RESNET_ENCODERS",
    "ResNetEncoder",
    "ResNetParams",
    "SmallCNN",
    "SmallResNet",
    "torchvision_state_dict",
]
