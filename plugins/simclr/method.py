"""SimCLR as a method (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual
Representations", Algorithm 1; the seed's Algorithm 2).

Two views of every image from one augmentation list, one encoder f and projection head g shared by
both views (a single forward pass over all 2B views), and a two-view contrastive loss on the
projections: NT-Xent (``[loss] type = "nt_xent"``) in the paper, or any registered loss that takes
``loss(z_a, z_b)``. No predictor, no momentum target, no state: the encoder f is what is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch

from contrastive_core import ComponentParams, Method, MethodOutput, MethodParts, StepProgress, ViewGroup


class SimCLRParams(ComponentParams):
    type: Literal["simclr"] = "simclr"


class SimCLR(Method):
    """SimCLR: z = g(f(x)) for both views in one pass, and the recipe's loss on the pairs (NT-Xent).

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image i. The forward is
    split (:meth:`embed`: the projections; :meth:`objective`: the loss), so gradient caching applies.
    """

    name: ClassVar[str] = "simclr"
    Params: ClassVar[type[ComponentParams]] = SimCLRParams
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head", "loss")

    def __init__(self, params: SimCLRParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head
        self.loss = parts.loss

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"projections": (2B, d)}``: z = g(f(x)) of both views in one pass, rows i and B + i image i."""
        return {"projections": self.head(self.encoder(views["global"]))}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        z = embeddings["projections"]
        z_a, z_b = z.chunk(2)  # row i of z_a and of z_b: the two views of image i
        # The networks run in the run's mixed precision, the loss outside it: similarities over a
        # temperature need more than bf16's 8 significant bits (a loss may still choose its own dtype).
        with torch.autocast(device_type=z.device.type, enabled=False):
            return MethodOutput(self.loss(z_a, z_b))
