"""The optimizer kind: turns a model's parameters into a ``torch.optim.Optimizer``."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from .component import Component, ComponentParams


class Optimizer(Component):
    """An optimizer component builds a ``torch.optim.Optimizer`` for ``model``'s trainable parameters.

    Context given by the engine: ``model`` (the module to optimise, e.g. encoder + head) and
    ``batch_size`` (the global batch, for learning-rate scaling rules such as lr = base * batch / 256).
    """

    kind: ClassVar[str] = "optimizer"

    @classmethod
    @abstractmethod
    def from_params(  # type: ignore[override]
        cls, params: ComponentParams, *, model: nn.Module, batch_size: int = 256, **context: Any
    ) -> torch.optim.Optimizer:
        """Return the optimizer over ``model.parameters()`` that ``params`` describe."""
