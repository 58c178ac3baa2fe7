"""The ``timm`` encoder: any timm architecture by name, without its classifier.

``timm.create_model(model, pretrained=False, num_classes=0, ...)`` builds the network with random
weights and no classifier; its forward then ends in timm's global pooling (the average pool of a
CNN, the class token of a ViT), so h has ``head_hidden_size`` dimensions (``num_features`` for most
models; more where timm puts a pre-logits layer after the pooling, as MobileNetV3 does).

The params are checked when they are validated, by building the model on the meta device (shapes
only, no memory or initialisation): an architecture that does not take ``img_size`` or
``drop_path_rate``, or a ``cifar_stem`` on one without the standard ResNet stem, is a recipe error
naming the setting, before any run starts.

The weights are exported with timm's own key names (``conv1.weight``, ``blocks.0.attn.qkv.weight``), so
they load into ``timm.create_model(model, num_classes=0)``; see :mod:`.external_models`.
"""

from __future__ import annotations

import difflib
from types import ModuleType
from typing import Literal

import torch
from pydantic import Field, PositiveInt, field_validator, model_validator
from torch import nn

from contrastive_core import Encoder, EncoderParams, ExternalModel

from .cifar_stem import cifar_stem_problem, use_cifar_stem
from .external_models import timm_external_models

#: The keyword each params field becomes in ``timm.create_model``.
_KEYWORDS = {
    "in_channels": "in_chans",
    "img_size": "img_size",
    "dynamic_img_size": "dynamic_img_size",
    "drop_path_rate": "drop_path_rate",
}


class TimmParams(EncoderParams):
    type: Literal["timm"]

    model: str
    """The timm architecture, as timm.list_models() names it: "resnet50", "vit_small_patch16_224",
    "convnext_tiny", "efficientnet_b0", ... (a pretrained tag such as ".a1_in1k" is allowed and changes
    nothing: no weights are downloaded; use init for weights). Built with num_classes=0: no classifier."""

    in_channels: PositiveInt = 3
    """Channels of the input images (timm's in_chans): 3 for RGB, 1 for grayscale datasets such as
    Fashion-MNIST."""

    cifar_stem: bool = False
    """Replace a timm ResNet's 7x7 stride-2 stem conv by a 3x3 stride-1 conv and drop its max-pool, as
    SimCLR does for 32x32 CIFAR images (Chen et al., 2020, Appendix B.9). Only for ResNets with that
    standard stem (resnet18 ... resnet152, wide_resnet50_2, resnext50_32x4d); an error for any other."""

    img_size: PositiveInt | None = None
    """Side of the square input images, for architectures made for one size (ViTs: their positional
    embeddings; Swin: its windows); default the architecture's own (224 for *_224). An error for
    architectures that take any size (ResNets, ConvNeXts)."""

    dynamic_img_size: bool = False
    """Let a ViT-like architecture take any input size that is a multiple of its patch: timm then resizes
    the positional embeddings to each input's patch grid, as the vit encoder does (the small views of
    multi-crop methods). An error for architectures without it."""

    drop_path_rate: float = Field(0.0, ge=0, lt=1)
    """Stochastic depth (Huang et al. 2016) of architectures with residual blocks, timm's drop_path_rate
    (DINO's ViT-S: 0.1); 0 leaves it off. An error for architectures without it."""

    @field_validator("model")
    @classmethod
    def _known_architecture(cls, name: str) -> str:
        timm = _import_timm()
        if ":" in name:
            # hf-hub:... and local-dir:... read a configuration (and weights) from elsewhere.
            raise ValueError(
                f"{name!r}: give a timm architecture name; names with a source such as 'hf-hub:' load from "
                "elsewhere (for weights, set init to a local file)"
            )
        if not timm.is_model(name):
            close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(match) for match in close)}?" if close else "."
            raise ValueError(
                f"{name!r} is not a timm architecture{hint} timm.list_models('{name.split('_')[0]}*') lists "
                "the names that start alike"
            )
        return name

    @model_validator(mode="after")
    def _check_with_timm(self) -> TimmParams:
        # A meta-device build: shapes only, so checking a large architecture costs no memory.
        with torch.device("meta"):
            create_timm_model(self)
        return self


def _import_timm() -> ModuleType:
    try:
        import timm
    except ImportError as error:  # installed (the plugin registered the encoder) but broken
        raise ValueError(
            f"the timm encoder needs timm, which cannot be imported ({error}): pip install 'contrastive[timm]'"
        ) from None
    return timm


def create_timm_model(params: TimmParams) -> nn.Module:
    """``params``' timm network, at random initialisation, without classifier (and with the CIFAR stem).

    Raises ValueError, with the recipe's words, for a setting the architecture does not take.
    """
    timm = _import_timm()
    name = params.model
    settings = {"in_channels": params.in_channels}
    if params.img_size is not None:
        settings["img_size"] = params.img_size
    if params.dynamic_img_size:
        settings["dynamic_img_size"] = True
    if params.drop_path_rate:
        settings["drop_path_rate"] = params.drop_path_rate
    keywords = {_KEYWORDS[field]: value for field, value in settings.items()}
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0, **keywords)
    except TypeError as error:
        refused = [field for field, keyword in _KEYWORDS.items() if f"'{keyword}'" in str(error)]
        if not refused:
            raise
        raise ValueError(
            f"{refused[0]}: the timm architecture {name!r} does not take it ({error}); remove it"
        ) from None
    if params.cifar_stem:
        problem = cifar_stem_problem(model)
        if problem is not None:
            raise ValueError(f"cifar_stem: not for model {name!r}: {problem}")
        use_cifar_stem(model, params.in_channels)
    return model


class TimmEncoder(Encoder):
    """A timm architecture by name (resnet50, vit_small_patch16_224, convnext_tiny, ...) without classifier."""

    name = "timm"
    Params = TimmParams

    def __init__(self, params: TimmParams) -> None:
        super().__init__(params)
        self.model = create_timm_model(params)
        # head_hidden_size is what the forward returns with num_classes=0: the pooled features, or a
        # pre-logits layer's output where timm has one after the pooling (MobileNetV3).
        self._feature_dim = int(getattr(self.model, "head_hidden_size", None) or self.model.num_features)

    @property
    def feature_dim(self) -> int:
        """The width of timm's pooled output: 2048 for resnet50, 384 for vit_small_patch16_224, ..."""
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W) -> h: (B, feature_dim), timm's features after global pooling."""
        try:
            return self.model(images)
        except AssertionError as error:
            # timm asserts the input size of architectures made for one (ViT, Swin); a ValueError names the
            # settings, and is what the pretrain stage's check of data against model reports cleanly.
            raise ValueError(
                f"timm model {self.params.model!r}: {error} Set img_size to the images' size (or "
                "dynamic_img_size = true for inputs of several sizes)"
            ) from None

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights keyed as timm's model (``conv1.weight``, ...): they load into
        ``timm.create_model(model, num_classes=0)`` (with the same stem and in_chans)."""
        return self.model.state_dict()

    def load_exported_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`export_state_dict` (strict: every key must match)."""
        self.model.load_state_dict(state, strict=True)

    def external_models(self) -> dict[str, ExternalModel]:
        """timm's network, and torchvision's for the ResNets both libraries have (see :mod:`.external_models`)."""
        params = self.params
        return timm_external_models(
            self.model,
            name=params.model,
            in_channels=params.in_channels,
            img_size=params.img_size,
            dynamic_img_size=params.dynamic_img_size,
            cifar_stem=params.cifar_stem,
        )
