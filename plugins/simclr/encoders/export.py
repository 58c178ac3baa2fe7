"""Export a pretrained encoder's weights in the layout of the plain network it was built from.

The user story: pretrain a ResNet-50 with SimCLR, then load the backbone into an ordinary
``torchvision.models.resnet50`` for a downstream task, with no dependency on this framework.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet


def torchvision_state_dict(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of a ResNet encoder, keyed exactly as torchvision's ResNet without its classifier.

    The result loads with ``strict=True`` into ``torchvision.models.<name>(weights=None)`` once its
    ``fc`` is replaced by ``nn.Identity()`` (the encoder has no classifier, so there are no ``fc.*``
    keys to load; keeping torchvision's ``fc`` and loading with ``strict=False`` reports exactly
    ``fc.weight`` and ``fc.bias`` as missing). An encoder built with ``cifar_stem`` or ``in_channels``
    has a different ``conv1``: give the torchvision model the same stem first (see
    docs/components/encoders.md). SyncBatchNorm layers export under the same keys as BatchNorm2d.

    Like ``nn.Module.state_dict``, the tensors share storage with the encoder; clone them if the encoder
    keeps training.
    """
    backbone = getattr(encoder, "backbone", None)
    if not isinstance(backbone, ResNet):
        raise TypeError(
            f"{type(encoder).__name__} is not a torchvision ResNet encoder; "
            "use its export_state_dict() for its own weight layout"
        )
    return dict(backbone.state_dict())
