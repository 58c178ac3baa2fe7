"""The ``adamw`` optimizer component: AdamW with optional batch-size lr scaling and BN/bias exclusion."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from contrastive_core import ComponentParams, Optimizer

from .lr_scaling import LrScaling, scaled_learning_rate
from .param_groups import ExclusionRule, parameter_groups

Beta = Annotated[float, Field(ge=0, lt=1)]


class AdamWOptimizerParams(ComponentParams):
    type: Literal["adamw"] = "adamw"

    lr: float = Field(default=1e-3, gt=0)
    """Base learning rate before lr_scaling."""

    lr_scaling: LrScaling = "none"
    """Scaling with the global batch N: 'linear' (lr * N / 256), 'sqrt' (lr * sqrt(N)) or 'none'."""

    betas: tuple[Beta, Beta] = (0.9, 0.999)
    """Decay rates of the first and second moment estimates."""

    eps: float = Field(default=1e-8, gt=0)
    """Term added to the denominator for numerical stability."""

    weight_decay: float = Field(default=1e-2, ge=0)
    """Decoupled weight decay (Loshchilov & Hutter, 2019); 0 for excluded parameters."""

    exclude: ExclusionRule = "bn_and_bias"
    """Exempt from weight decay: 'bn_and_bias' (normalisation layers and biases) or 'none'."""


class AdamWOptimizer(Optimizer):
    """AdamW (torch.optim.AdamW) with decoupled weight decay, not applied to BN parameters and biases."""

    name: ClassVar[str] = "adamw"
    Params: ClassVar[type[ComponentParams]] = AdamWOptimizerParams

    @classmethod
    def from_params(  # type: ignore[override]
        cls, params: AdamWOptimizerParams, *, model: nn.Module, batch_size: int = 256, **context: Any
    ) -> torch.optim.Optimizer:
        lr = scaled_learning_rate(params.lr, batch_size, params.lr_scaling)
        groups = parameter_groups(model, rule=params.exclude, lr=lr, weight_decay=params.weight_decay)
        return torch.optim.AdamW(
            groups, lr=lr, betas=params.betas, eps=params.eps, weight_decay=params.weight_decay
        )
