"""An encoder followed by the first layers of its projection head: what SimCLRv2 fine-tunes.

SimCLRv2 (Chen, Kornblith, Swersky, Norouzi, Hinton 2020, arXiv:2006.10029, Sec. 2) deepens the
projection head to three layers and, instead of discarding it after pretraining, fine-tunes from its
first layer: the network kept is f followed by the head's first linear layer with its BatchNorm and
ReLU, h' = ReLU(BN(W1 f(x))). The pretrain stage exports this when ``export_head_layers = k`` is set:
the encoder ``with_head_layers`` holds the recipe's encoder table, its head table and k, so every later
stage (``finetune``, ``semi_supervised``, ``linear_eval``, ``knn_eval``, ``distill``) rebuilds and loads
it like any other exported encoder.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator

from contrastive_core import ComponentTable, Encoder, EncoderParams, build

from ..projection_head import ProjectionHead


class WithHeadLayersParams(EncoderParams):
    type: Literal["with_head_layers"]
    encoder: Annotated[dict[str, Any], ComponentTable("encoder")]
    """The encoder f's table, as in [model.encoder]."""
    head: Annotated[dict[str, Any], ComponentTable("head")]
    """The projection head's table, as in [model.head] (an "mlp" head)."""
    head_layers: int = Field(1, ge=1)
    """How many of the head's linear layers (each with its BN and ReLU) follow f: SimCLRv2 fine-tunes from
    the first (Sec. 2)."""

    @model_validator(mode="after")
    def _no_inner_init(self) -> WithHeadLayersParams:
        # The inner table is built here, not where init files are applied: it would be ignored.
        if self.encoder.get("init") is not None:
            raise ValueError(
                "encoder.init is not applied to the encoder inside with_head_layers; set init on "
                "with_head_layers itself (a weights file of the whole composite), or on [model.encoder] of "
                "the pretraining recipe"
            )
        return self


class WithHeadLayers(Encoder):
    """f followed by the head's first ``head_layers`` layers: (B, C, H, W) -> (B, hidden_dim) (or out_dim
    when every layer is kept)."""

    name = "with_head_layers"
    Params = WithHeadLayersParams

    def __init__(
        self, params: WithHeadLayersParams, parts: tuple[Encoder, ProjectionHead] | None = None
    ) -> None:
        super().__init__(params)
        if parts is None:
            encoder = build("encoder", params.encoder)
            head = build("head", params.head, in_dim=encoder.feature_dim)
        else:
            encoder, head = parts
        if not isinstance(head, ProjectionHead):
            raise ValueError(f"with_head_layers needs an 'mlp' head, got {type(head).__name__}")
        self.encoder = encoder
        self.head_layers = head.leading_layers(params.head_layers)
        self._feature_dim = head.width_after(params.head_layers)

    @classmethod
    def around(cls, encoder: Encoder, head: ProjectionHead, head_layers: int) -> WithHeadLayers:
        """The composite of trained modules (shared, not copied), for export after pretraining."""
        params = WithHeadLayersParams(
            type="with_head_layers",
            # Without the encoder's init file: the trained modules hold the weights now.
            encoder=encoder.params.model_dump(mode="json", exclude={"init"}),
            head=head.params.model_dump(mode="json"),
            head_layers=head_layers,
        )
        return cls(params, (encoder, head))

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W) -> (B, feature_dim): the head layers on h = f(x)."""
        return self.head_layers(self.encoder(images))

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """``encoder.*``: the encoder's own exported keys (torchvision's for a ResNet); ``head.*``: the
        head layers' state dict."""
        state = {f"encoder.{name}": tensor for name, tensor in self.encoder.export_state_dict().items()}
        state |= {f"head.{name}": tensor for name, tensor in self.head_layers.state_dict().items()}
        return state

    def load_exported_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        encoder = {name[len("encoder.") :]: t for name, t in state.items() if name.startswith("encoder.")}
        head = {name[len("head.") :]: t for name, t in state.items() if name.startswith("head.")}
        unknown = sorted(set(state) - {f"encoder.{n}" for n in encoder} - {f"head.{n}" for n in head})
        if unknown:
            raise RuntimeError(f"unexpected keys in the state dict: {', '.join(unknown[:5])}")
        self.encoder.load_exported_state_dict(encoder)
        self.head_layers.load_state_dict(head, strict=True)
