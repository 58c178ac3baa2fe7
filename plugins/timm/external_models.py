"""A timm encoder as timm's network, and as torchvision's for the ResNets both libraries define.

timm's ``resnet18`` ... ``resnet152``, ``wide_resnet*`` and ``resnext*`` have torchvision's key names
and compute the same function, so their state dict loads into the torchvision model of the same name
(``tests/timm/test_export_formats.py`` checks both); other architectures are timm's only.
"""

from __future__ import annotations

from torch import nn

from contrastive_core import ExternalModel

#: timm architectures that are torchvision's model of the same name (torchvision.models.<name>).
TORCHVISION_RESNETS = frozenset(
    {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "resnext50_32x4d",
        "resnext101_32x8d",
        "resnext101_64x4d",
    }
)


def timm_external_models(
    model: nn.Module,
    *,
    name: str,
    in_channels: int,
    img_size: int | None,
    dynamic_img_size: bool,
    cifar_stem: bool,
) -> dict[str, ExternalModel]:
    """``"timm"`` always, ``"torchvision"`` for :data:`TORCHVISION_RESNETS`, for the network ``model``
    that ``timm.create_model(name, ...)`` made with these settings; the state dict is the same."""
    state = model.state_dict()
    keywords = f"pretrained=False, num_classes=0, in_chans={in_channels}"
    if img_size is not None:
        keywords += f", img_size={img_size}"
    if dynamic_img_size:
        keywords += ", dynamic_img_size=True"
    width = getattr(getattr(model, "conv1", None), "out_channels", None)  # a ResNet's stem width
    stem = _cifar_stem_lines(in_channels, width) if cifar_stem else []
    formats = {
        "timm": ExternalModel(
            state,
            "\n".join(
                ["import timm", "import torch", "", f'model = timm.create_model("{name}", {keywords})', *stem]
            ),
            "timm",
        )
    }
    architecture = name.split(".")[0]  # without a pretrained tag (".a1_in1k")
    if architecture in TORCHVISION_RESNETS:
        lines = [
            "import torch",
            "import torchvision",
            "",
            f"model = torchvision.models.{architecture}(weights=None)",
            "model.fc = torch.nn.Identity()  # no classifier: the output is h, the pooled features",
        ]
        if not cifar_stem and in_channels != 3:
            lines.append(
                f"model.conv1 = torch.nn.Conv2d({in_channels}, {width}, kernel_size=7, stride=2, padding=3, "
                f"bias=False)  # in_channels = {in_channels}"
            )
        formats["torchvision"] = ExternalModel(state, "\n".join(lines + stem), "torchvision")
    return formats


def _cifar_stem_lines(in_channels: int, width: int) -> list[str]:
    """The code giving a freshly built ResNet the encoder's CIFAR stem."""
    return [
        f"model.conv1 = torch.nn.Conv2d({in_channels}, {width}, kernel_size=3, stride=1, padding=1, "
        "bias=False)  # cifar_stem",
        "model.maxpool = torch.nn.Identity()",
    ]
