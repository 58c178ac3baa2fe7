"""VICReg as a method (Bardes, Ponce, LeCun 2022, "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning", ICLR, arXiv:2105.04906).

Two views of every image, one encoder f and expander (projector) g shared by both views (no predictor,
no momentum target, no stop-gradient, no negatives), and a loss of three explicit terms on the
embeddings (:mod:`.loss`): invariance between the views, a variance hinge per dimension against
collapse, and a covariance penalty decorrelating the dimensions. The expander of the paper's ImageNet
setting is a 3-layer MLP of 8192 units, BN and ReLU after the first two layers and nothing after the
last: ``[model.head] type = "mlp"`` with ``hidden_dim = 8192``, ``out_dim = 8192``, ``num_layers = 3``,
``output_norm = "none"``. The loss has no ``[loss]`` section: its coefficients are this method's params.
The encoder f is what is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field, PositiveFloat

from contrastive_core import ComponentParams, Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from contrastive_core.engine import at_least_float32

from .loss import vicreg_loss


class VICRegParams(ComponentParams):
    type: Literal["vicreg"] = "vicreg"

    lambda_invariance: float = Field(25.0, ge=0)
    """lambda, the weight of the invariance term s(Z, Z'): 25 in the paper's ImageNet setting (Sec. 4) and
    the authors' code (``--sim-coeff``). s is averaged over the rows and the dimensions, as in that code
    (the paper's formula averages over the rows only); see the loss module."""

    mu_variance: float = Field(25.0, ge=0)
    """mu, the weight of the variance term: 25 in the paper (Sec. 4) and the authors' code
    (``--std-coeff``). It multiplies the mean of the two views' hinges, (v(Z) + v(Z')) / 2, as in that
    code; the paper writes v(Z) + v(Z'), the same loss with mu doubled."""

    nu_covariance: float = Field(1.0, ge=0)
    """nu, the weight of the covariance term c(Z) + c(Z'): 1 in the paper (Sec. 4) and the authors' code
    (``--cov-coeff``)."""

    gamma: PositiveFloat = 1.0
    """The target standard deviation of every embedding dimension in the variance hinge (1 in the paper)."""

    eps: PositiveFloat = 1e-4
    """Added to each dimension's variance under the square root of the variance hinge, which keeps its
    gradient finite for a collapsed dimension (1e-4 in the paper and the authors' code)."""


class VICReg(Method):
    """VICReg: invariance, variance and covariance terms on the two views' embeddings.

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image i.
    """

    name: ClassVar[str] = "vicreg"
    Params: ClassVar[type[ComponentParams]] = VICRegParams
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head",)

    def __init__(self, params: VICRegParams, parts: MethodParts) -> None:
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
        # The networks run in the run's mixed precision, the loss in float32 outside it: (d, d)
        # covariances (d = 8192) summed over the batch need more than bf16's 8 significant bits.
        with torch.autocast(device_type=z_a.device.type, enabled=False):
            params = self.params
            terms = vicreg_loss(
                at_least_float32(z_a),
                at_least_float32(z_b),
                params.lambda_invariance,
                params.mu_variance,
                params.nu_covariance,
                params.gamma,
                params.eps,
            )
        metrics = {
            "invariance": terms.invariance.detach(),
            "variance": terms.variance.detach(),
            "covariance": terms.covariance.detach(),
        }
        return MethodOutput(terms.loss, metrics)
