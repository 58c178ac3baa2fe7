"""The scheduler kind: the learning rate as a function of the optimisation step."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch

from .component import Component, ComponentParams


class Scheduler(Component):
    """A scheduler component builds a per-step ``torch.optim.lr_scheduler.LRScheduler``.

    Context given by the engine: ``optimizer``, ``total_steps`` and ``steps_per_epoch`` (so that warmup
    stated in epochs converts to steps). The engine calls ``scheduler.step()`` once per optimiser step.
    """

    kind: ClassVar[str] = "scheduler"

    @classmethod
    @abstractmethod
    def from_params(  # type: ignore[override]
        cls,
        params: ComponentParams,
        *,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        steps_per_epoch: int,
        **context: Any,
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """Return the scheduler that drives ``optimizer`` over ``total_steps`` steps."""
