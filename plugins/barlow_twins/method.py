"""Barlow Twins as a method (Zbontar, Jing, Misra, LeCun, Deny 2021, "Barlow Twins: Self-Supervised
Learning via Redundancy Reduction", arXiv:2103.03230).

Two views of every image, one encoder f and projector g shared by both views (no predictor, no
momentum target, no stop-gradient, no negatives), and a loss that makes the cross-correlation of the
two views' projections over the batch close to the identity (:mod:`.loss`). The projector of the
paper (Sec. 3, "Implementation details") is a 3-layer MLP of 8192 units, BN and ReLU after the first
two layers and nothing after the last: ``[model.head] type = "mlp"`` with ``hidden_dim = 8192``,
``out_dim = 8192``, ``num_layers = 3``, ``output_norm = "none"``. The loss has no ``[loss]`` section:
its hyperparameters are this method's params. The encoder f is what is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field, PositiveFloat

from contrastive_core import ComponentParams, Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from contrastive_core.engine import at_least_float32

from .loss import barlow_twins_loss


class BarlowTwinsParams(ComponentParams):
    type: Literal["barlow_twins"] = "barlow_twins"

    lambda_offdiagonal: float = Field(0.0051, ge=0)
    """lambda of eq. 1, the weight of the redundancy-reduction (off-diagonal) term against the invariance
    (on-diagonal) term. 0.0051 is the authors' code's default (facebookresearch/barlowtwins, ``--lambd``),
    with which the published ImageNet results were trained; the paper's text (Sec. 3) rounds it to 5e-3."""

    eps: PositiveFloat = 1e-5
    """Added to each dimension's biased batch variance before the square root when standardising the
    projections: the authors' code standardises with ``BatchNorm1d(affine=False)``, whose eps is 1e-5."""


class BarlowTwins(Method):
    """Barlow Twins: the cross-correlation of the two views' projections pulled towards the identity.

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image i.
    """

    name: ClassVar[str] = "barlow_twins"
    Params: ClassVar[type[ComponentParams]] = BarlowTwinsParams
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head",)

    def __init__(self, params: BarlowTwinsParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"projections": (2B, d)}``: rows i and B + i the projections of image i's two views."""
        first, second = views["global"].chunk(2)  # (B, C, H, W) each, row i of both is image i
        # One pass per view, as the reference code does, so the BatchNorm layers of f and g normalise
        # each view with its own batch statistics (one pass over 2B rows would mix the two views').
        return {"projections": torch.cat([self.head(self.encoder(first)), self.head(self.encoder(second))])}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        z_a, z_b = embeddings["projections"].chunk(2)  # (B, d) each
        # The networks run in the run's mixed precision, the loss in float32 outside it: a d x d
        # cross-correlation (d = 8192) summed over the batch needs more than bf16's 8 significant bits.
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            terms = barlow_twins_loss(
                at_least_float32(z_a), at_least_float32(z_b), self.params.lambda_offdiagonal, self.params.eps
            )
        metrics = {"on_diagonal": terms.on_diagonal.detach(), "off_diagonal": terms.off_diagonal.detach()}
        return MethodOutput(terms.loss, metrics)
