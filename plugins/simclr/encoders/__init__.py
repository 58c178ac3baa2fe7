"""SimCLR encoders f(.): torchvision ResNets and a small CPU-friendly CNN; weight export for downstream use."""

from .export import torchvision_state_dict
from .resnet import RESNET_ENCODERS, ResNetEncoder, ResNetParams
from .small_cnn import SmallCNN

#: Every encoder the SimCLR plugin set registers (plugin.py returns this list).
ENCODERS: list[type] = [*RESNET_ENCODERS, SmallCNN]

__all__ = [
    "ENCODERS",
    "RESNET_ENCODERS",
    "ResNetEncoder",
    "ResNetParams",
    "SmallCNN",
    "torchvision_state_dict",
]
