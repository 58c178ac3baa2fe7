"""SimCLR encoders f(.): torchvision ResNets, SimCLRv2's selective-kernel ResNets and two small CPU-friendly
ones; weight export for downstream use."""

from .export import torchvision_state_dict
from .resnet import RESNET_ENCODERS, ResNetEncoder, ResNetParams
from .sk_resnet import SK_RESNET_ENCODERS, SKResNetEncoder, SKResNetParams
from .small_cnn import SmallCNN
from .small_resnet import SmallResNet
from .with_head_layers import WithHeadLayers

#: Every encoder the SimCLR plugin set registers (plugin.py returns this list).
ENCODERS: list[type] = [*RESNET_ENCODERS, *SK_RESNET_ENCODERS, SmallCNN, SmallResNet, WithHeadLayers]

__all__ = [
    "ENCODERS",
    "RESNET_ENCODERS",
    "SK_RESNET_ENCODERS",
    "ResNetEncoder",
    "ResNetParams",
    "SKResNetEncoder",
    "SKResNetParams",
    "SmallCNN",
    "SmallResNet",
    "WithHeadLayers",
    "torchvision_state_dict",
]
