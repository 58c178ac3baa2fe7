"""DINO's projection head (Caron et al. 2021, arXiv:2104.14294, Sec. 3.1, "Network architecture").

A 3-layer MLP with hidden width 2048 and GELU, a linear bottleneck to 256, L2 normalisation, then a
weight-normalised linear layer to K = 65,536 dimensions (:class:`.weight_normalized_linear.WeightNormalizedLinear`),
whose outputs the method turns into distributions with a softmax. No batch norm for ViTs ("the
projection head has no BN", which makes the whole system BN-free); the ResNet-50 setting of the reference
code uses BN in the head (``use_bn_in_head``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from contrastive_core import ComponentParams, Head
from contrastive_core.engine import at_least_float32

from .weight_normalized_linear import WeightNormalizedLinear

__all__ = ["DINOHead", "DINOHeadParams"]


class DINOHeadParams(ComponentParams):
    type: Literal["dino_head"]

    hidden_dim: PositiveInt = 2048
    """Width of the MLP's hidden layers (Sec. 3.1: 2048)."""

    bottleneck_dim: PositiveInt = 256
    """Output of the MLP, L2-normalised before the last layer (the reference code's bottleneck_dim 256)."""

    out_dim: PositiveInt = 65536
    """K, the dimension of the output distributions (the reference code's out_dim 65,536; the released
    ResNet-50 was trained with 60,000)."""

    num_layers: int = Field(3, ge=1)
    """Linear layers of the MLP, the bottleneck included (Sec. 3.1: a 3-layer MLP)."""

    batch_norm: bool = False
    """Batch norm after every hidden linear layer: off for ViTs (the paper), on in the reference code's
    ResNet-50 setting (``use_bn_in_head``)."""

    norm_last_layer: bool = True
    """Fix the last layer's weight-norm scale g to 1 (the reference code's default; it trains more
    stably). False learns g, as the released ViT-S/16 800-epoch model did."""


class DINOHead(Head):
    """MLP (GELU) -> bottleneck -> L2 normalise -> weight-normalised linear to ``out_dim`` logits."""

    name: ClassVar[str] = "dino_head"
    Params: ClassVar[type[ComponentParams]] = DINOHeadParams

    def __init__(self, params: DINOHeadParams, in_dim: int) -> None:
        super().__init__(params, in_dim)
        sizes = [in_dim] + [params.hidden_dim] * (params.num_layers - 1) + [params.bottleneck_dim]
        layers: list[nn.Module] = []
        for index in range(params.num_layers):
            layers.append(nn.Linear(sizes[index], sizes[index + 1]))
            if index < params.num_layers - 1:
                if params.batch_norm:
                    layers.append(nn.BatchNorm1d(sizes[index + 1]))
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):  # the reference code's initialisation
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last_layer = WeightNormalizedLinear(
            params.bottleneck_dim, params.out_dim, learn_scale=not params.norm_last_layer
        )

    @property
    def out_dim(self) -> int:
        return self.params.out_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, in_dim) -> logits (B, out_dim), before the temperature, in float32 at least.

        The last layer runs outside autocast: its outputs are cosines that the method divides by
        temperatures of 0.04-0.1, and a bf16 cosine (8 bits) would carry an error of up to 0.05 into
        every logit."""
        bottleneck = F.normalize(self.mlp(h), dim=-1)
        with torch.autocast(device_type=h.device.type, enabled=False):
            return self.last_layer(at_least_float32(bottleneck))
