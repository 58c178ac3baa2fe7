"""The loss kind: a self-supervised objective over the projections of two views of one batch."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from pydantic_core import PydanticCustomError
from torch import nn

from ..errors import Problem
from .component import Component, ComponentParams

#: The smallest temperature accepted for logits that are cosine similarities divided by it. The logits
#: reach 1/temperature, and the loss and its gradients grow with them: below 1e-4 a step is more than
#: 10^4 times the gradient at 1 (no usual learning rate survives that); at 1e-9 a loss of ~4e8 is logged.
MIN_TEMPERATURE = 1e-4


def check_temperature(value: float) -> float:
    """For a params ``field_validator``: refuse a cosine-similarity temperature below
    :data:`MIN_TEMPERATURE`, saying why, and return ``value`` otherwise."""
    if value < MIN_TEMPERATURE:
        raise PydanticCustomError(
            "temperature_too_small",
            "too small to train with: the logits reach 1/temperature and the loss and its gradients grow "
            "with them; use at least 0.0001 (papers use 0.05 to 1.0)",
        )
    return value


def temperature_warnings(value: float, usual: tuple[float, float], practice: str) -> list[Problem]:
    """The warning for a temperature outside the ``usual`` range of the method's papers (``practice``
    says what they use), for :meth:`ComponentParams.recipe_warnings`; none inside it."""
    low, high = usual
    if low <= value <= high:
        return []
    effect = (
        f"the logits reach 1/{value:g} = {1 / value:g}: the softmax puts nearly all weight on the hardest "
        "negative and the loss and its gradients grow with 1/temperature"
        if value < low
        else f"the logits stay within +-{1 / value:.3g}, so the softmax barely tells the positive from the negatives"
    )
    return [
        Problem(
            "temperature",
            f"{value:g} is outside the usual range {low:g} to {high:g} ({practice}); {effect}. Fine for a "
            "deliberate sweep; otherwise check the value",
        )
    ]


class Loss(Component, nn.Module):
    """Called as ``loss(z_a, z_b)`` with the projections of view a and view b, each ``(B, d)``.

    Row i of ``z_a`` and row i of ``z_b`` come from the same image (the positive pair). Returns a scalar.
    A loss that needs negatives from other processes gathers them itself, differentiably.
    """

    kind: ClassVar[str] = "loss"

    def __init__(self, params: ComponentParams) -> None:
        nn.Module.__init__(self)
        self.params = params

    @abstractmethod
    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """z_a, z_b: (B, d) -> scalar loss."""
