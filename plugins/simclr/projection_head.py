"""The MLP head: SimCLR's projection g(h) = W2 ReLU(BN(W1 h)), and the projectors and predictors of its successors.

The paper (Chen et al., 2020, Sec. 2.1) writes g(h) = W2 ReLU(W1 h); its reference implementation also
applies batch normalisation after every linear layer, including the last, and SimCLRv2 (Chen et al.,
2020b, Sec. 2) deepens the head to 3 layers. The contrastive loss is computed on z = g(h); h is what is
kept after pretraining, because the head discards information useful downstream (Sec. 4.2).

The same MLP, with a different treatment of its output layer (``output_norm``), is the projector and
predictor of BYOL (no BN on the output, Grill et al. 2020, Sec. 3.3), MoCo v3 (BN without affine
parameters on the projector's output, Chen, Xie, He 2021, Sec. 4), Barlow Twins and VICReg (no BN on the
output, 3 layers of 8192; Zbontar et al. 2021, Sec. 3; Bardes et al. 2022, Sec. 4.2).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from contrastive_core import ComponentParams, Head

OutputNorm = Literal["scale", "no_affine", "none"]


class ProjectionHeadParams(ComponentParams):
    type: Literal["mlp"]

    hidden_dim: PositiveInt = 2048
    """Width of every hidden layer (2048 in SimCLR, the feature size of ResNet-50)."""

    out_dim: PositiveInt = 128
    """Size of the projection z that the loss compares (128 in SimCLR)."""

    num_layers: int = Field(2, ge=1)
    """Number of linear layers: 2 in SimCLR, 3 in SimCLRv2; 1 gives the paper's linear projection ablation."""

    batch_norm: bool = True
    """Batch-normalise the output of every hidden linear layer (and the last one per ``output_norm``), as
    SimCLR's reference implementation does; a layer followed by BN has no bias (the BN shift replaces it).
    False gives the paper's formula exactly: W2 ReLU(W1 h + b1) + b2, with no BN anywhere."""

    output_norm: OutputNorm = "scale"
    """The last layer's BN when ``batch_norm`` is on. 'scale': BN with a learnt scale but no shift
    (SimCLR's reference code); 'no_affine': BN without learnt parameters (MoCo v3's projector, Chen, Xie,
    He 2021, Sec. 4); 'none': no BN, the last linear layer keeps its bias (BYOL's projector and predictor,
    Grill et al. 2020, Sec. 3.3; Barlow Twins and VICReg, whose losses standardise the output themselves)."""


class ProjectionHead(Head):
    """MLP projection head g(h) = W2 ReLU(BN(W1 h)) (SimCLR), with optional BN and extra layers (SimCLRv2)."""

    name = "mlp"
    Params = ProjectionHeadParams

    def __init__(self, params: ProjectionHeadParams, in_dim: int) -> None:
        super().__init__(params, in_dim)
        sizes = [in_dim] + [params.hidden_dim] * (params.num_layers - 1) + [params.out_dim]
        layers: list[nn.Module] = []
        for index in range(params.num_layers):
            is_last = index == params.num_layers - 1
            norm = (
                _output_norm(params, sizes[index + 1]) if is_last else _hidden_norm(params, sizes[index + 1])
            )
            layers.append(nn.Linear(sizes[index], sizes[index + 1], bias=norm is None))
            if norm is not None:
                layers.append(norm)
            if not is_last:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)
        self._out_dim = params.out_dim

    @property
    def out_dim(self) -> int:
        return self._out_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, in_dim) -> z: (B, out_dim). Not L2-normalised: the loss's cosine similarity does that."""
        return self.layers(h)

    def leading_layers(self, count: int) -> nn.Sequential:
        """The head's first ``count`` linear layers, each with the BN and ReLU after it: (B, in_dim) ->
        (B, width), the same modules (not copies). SimCLRv2 fine-tunes from the output of the first
        (Chen et al. 2020b, Sec. 2: "fine-tune from the middle layer of the projection head")."""
        if not 1 <= count <= self.params.num_layers:
            raise ValueError(f"the head has {self.params.num_layers} linear layers; cannot take {count}")
        starts = [index for index, layer in enumerate(self.layers) if isinstance(layer, nn.Linear)]
        end = starts[count] if count < len(starts) else len(self.layers)
        return nn.Sequential(*list(self.layers)[:end])

    def width_after(self, count: int) -> int:
        """The size of the output of :meth:`leading_layers` (``count``)."""
        return self.params.out_dim if count == self.params.num_layers else self.params.hidden_dim


def _hidden_norm(params: ProjectionHeadParams, features: int) -> nn.BatchNorm1d | None:
    return nn.BatchNorm1d(features) if params.batch_norm else None


def _output_norm(params: ProjectionHeadParams, features: int) -> nn.BatchNorm1d | None:
    if not params.batch_norm or params.output_norm == "none":
        return None
    if params.output_norm == "no_affine":
        return nn.BatchNorm1d(features, affine=False)
    return _scale_only_batch_norm(features)


def _scale_only_batch_norm(features: int) -> nn.BatchNorm1d:
    """BatchNorm for the last layer: a learnt scale (gamma) but no shift (beta), as in SimCLR's reference code.

    The shift is kept as a frozen zero parameter rather than removed, so that SyncBatchNorm conversion
    (which copies ``weight`` and ``bias`` only for affine layers) and state dicts treat it like any
    other BatchNorm.
    """
    norm = nn.BatchNorm1d(features)
    nn.init.zeros_(norm.bias)
    norm.bias.requires_grad_(False)
    return norm
