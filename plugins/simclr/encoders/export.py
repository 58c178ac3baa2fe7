"""Export a pretrained encoder's weights in the layout of the plain network it was built from.

The user story: pretrain a ResNet-50 with SimCLR, then load the backbone into an ordinary
``torchvision.models.resnet50`` (or timm's ``resnet50``) for a downstream task, with no dependency on
this framework (``contrastive export --format torchvision|timm``).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet

from contrastive_core import ExternalModel


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


def resnet_external_models(encoder: nn.Module) -> dict[str, ExternalModel]:
    """A ResNet encoder as torchvision's and as timm's network (``contrastive export``).

    timm has each of these ResNets under torchvision's name, with the same key names and the same
    computation, so the one state dict loads into both. ``encoder.params`` says how the stem differs
    from the standard one (``cifar_stem``, ``in_channels``); the build code makes the same stem.
    """
    state = torchvision_state_dict(encoder)
    name = type(encoder).torchvision_builder.__name__
    params = encoder.params
    stem = _stem_lines(params.in_channels, encoder.backbone.conv1.out_channels, params.cifar_stem)
    torchvision_code = [
        "import torch",
        "import torchvision",
        "",
        f"model = torchvision.models.{name}(weights=None)",
        "model.fc = torch.nn.Identity()  # no classifier: the output is h, the pooled features",
    ]
    timm_code = [
        "import timm",
        "import torch",
        "",
        f'model = timm.create_model("{name}", pretrained=False, num_classes=0, in_chans={params.in_channels})',
    ]
    # timm makes a stem for in_chans itself; torchvision always builds a 3-channel one.
    torchvision_stem = stem if params.cifar_stem or params.in_channels != 3 else []
    timm_stem = stem if params.cifar_stem else []
    return {
        "torchvision": ExternalModel(state, "\n".join(torchvision_code + torchvision_stem), "torchvision"),
        "timm": ExternalModel(state, "\n".join(timm_code + timm_stem), "timm"),
    }


def _stem_lines(in_channels: int, out_channels: int, cifar_stem: bool) -> list[str]:
    """Code replacing a model's standard stem by the encoder's: the 3x3 stride-1 CIFAR stem without
    max-pool, or the standard 7x7 stride-2 conv for other input channels."""
    if cifar_stem:
        return [
            f"model.conv1 = torch.nn.Conv2d({in_channels}, {out_channels}, kernel_size=3, stride=1, padding=1, "
            "bias=False)  # cifar_stem",
            "model.maxpool = torch.nn.Identity()",
        ]
    return [
        f"model.conv1 = torch.nn.Conv2d({in_channels}, {out_channels}, kernel_size=7, stride=2, padding=3, "
        f"bias=False)  # in_channels = {in_channels}"
    ]
