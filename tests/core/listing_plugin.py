"""A third-party-style plugin whose loss has params of every shape ``contrastive list`` shows: defaults of
each TOML type, a required param, an unset one, and one without a description (a warning, no refusal)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contrastive_core import ComponentParams, Loss, hookimpl


class ShapesParams(ComponentParams):
    type: Literal["shapes_loss"]
    weight: float
    """Required: a recipe must set it."""
    normalise: bool = False
    """A boolean default."""
    mode: Literal["mean", "sum"] = "mean"
    """A string default."""
    scale: tuple[float, float] = (0.2, 1.0)
    """A pair, written as a TOML array."""
    classes: list[str] = Field(default_factory=lambda: ["cat", "dog"])
    """A list built by a default factory."""
    limit: int | None = None
    """Unset by default."""
    margin: float = 0.1


class ShapesLoss(Loss):
    """A loss whose params show every kind of default."""

    name = "shapes_loss"
    Params = ShapesParams

    def forward(self, z_a, z_b):
        return (z_a - z_b).square().mean() * self.params.weight


@hookimpl
def register_losses():
    return [ShapesLoss]
