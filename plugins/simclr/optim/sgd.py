"""The ``sgd`` optimizer component: SGD with momentum, batch-size lr scaling and BN/bias exclusion."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from contrastive_core import ComponentParams, Optimizer

from .lr_scaling import LrScaling, scaled_learning_rate
from .param_groups import ExclusionRule, parameter_groups


class SGDOptimizerParams(ComponentParams):
    type: Literal["sgd"] = "sgd"

    lr: float = Field(default=0.3, gt=0)
    """Base learning rate before lr_scaling."""

    lr_scaling: LrScaling = "linear"
    """Scaling with the global batch N: 'linear' (lr * N / 256), 'sqrt' (lr * sqrt(N)) or 'none'."""

    momentum: float = Field(default=0.9, ge=0, lt=1)
    """Momentum coefficient (torch.optim.SGD's momentum)."""

    weight_decay: float = Field(default=1e-6, ge=0)
    """L2 weight decay added to the gradient; 0 for excluded parameters."""

    nesterov: bool = False
    """Use Nesterov momentum (needs momentum > 0)."""

    exclude: ExclusionRule = "bn_and_bias"
    """Exempt from weight decay: 'bn_and_bias' (normalisation layers and biases) or 'none'."""

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDOptimizerParams:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov = true needs momentum > 0")
        return self


class SGDOptimizer(Optimizer):
    """SGD with momentum (torch.optim.SGD), lr scaled for the batch size, no weight decay on BN and biases.

    SimCLR replaces it by LARS because it becomes unstable at large batches (Sec. 2.2); fine for small ones.
    """

    name: ClassVar[str] = "sgd"
    Params: ClassVar[type[ComponentParams]] = SGDOptimizerParams

    @classmethod
    def from_params(  # type: ignore[override]
        cls, params: SGDOptimizerParams, *, model: nn.Module, batch_size: int = 256, **context: Any
    ) -> torch.optim.Optimizer:
        lr = scaled_learning_rate(params.lr, batch_size, params.lr_scaling)
        groups = parameter_groups(model, rule=params.exclude, lr=lr, weight_decay=params.weight_decay)
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=params.momentum,
            weight_decay=params.weight_decay,
            nesterov=params.nesterov,
        )
