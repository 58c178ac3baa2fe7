"""BYOL as a method (Grill et al. 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning", arXiv:2006.07733, Sec. 3 and Algorithm 1).

An *online* network (encoder f_theta, projector g_theta, predictor q_theta) learns to predict a *target*
network's projection of another view of the same image. The target (f_xi, g_xi) gets no gradient: its
weights are an exponential moving average of the online ones, xi <- tau xi + (1 - tau) theta, with tau
raised from tau_base = 0.996 to 1 over training on a cosine schedule (Sec. 3.3). There are no negatives;
the predictor and the slowly moving target keep the representation from collapsing.

The two views come from differently parameterised augmentations (Table 6: blur with probability 1.0 and
0.1, solarisation with 0.0 and 0.2), which a recipe writes as one ``[[views]]`` group of count 2 with a
``per_view`` list. The encoder f_theta is what is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from contrastive_core import ComponentParams, Method, MethodOutput, MethodParts, StepProgress, ViewGroup
from contrastive_core.components import MomentumTarget
from contrastive_core.engine import at_least_float32, cosine_schedule

from .regression_loss import symmetric_regression_loss


class BYOLParams(ComponentParams):
    type: Literal["byol"] = "byol"

    base_momentum: float = Field(0.996, ge=0, le=1)
    """tau_base, the target's EMA momentum at the start (Grill et al. 2020, Sec. 3.3: 0.996; the ablation
    of Sec. 5 trains well with 0.9 to 0.999, and fails with 0, an instantaneous target, or 1, a frozen one)."""

    final_momentum: float = Field(1.0, ge=0, le=1)
    """tau at the last step, reached by the cosine schedule tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2
    (Sec. 3.3: increased to one during training). Set it equal to base_momentum for a constant tau."""


class BYOL(Method):
    """BYOL: online q(g(f(x))) predicts the EMA target g'(f'(x')) of the other view, both view orders.

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image
    i. Each view runs through the networks on its own, as in the paper's implementation, so that batch
    normalisation statistics are those of one view's batch.
    """

    name: ClassVar[str] = "byol"
    Params: ClassVar[type[ComponentParams]] = BYOLParams
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head", "model.predictor")

    def __init__(self, params: BYOLParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head  # the projector g: (B, F) -> (B, D)
        self.predictor = parts.predictor  # q: (B, D) -> (B, D)
        # The target follows f then g. The Sequential only groups them for the copy: it is not kept
        # as a submodule, so each online layer is saved once in the method's state.
        self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"predictions": (2B, D)}``: q(g(f(x))) of each view, rows i and B + i image i's two views."""
        view_a, view_b = views["global"].chunk(2)  # two (B, C, H, W) views, row i of each of image i
        return {
            "predictions": torch.cat(
                [self.predictor(self.head(self.encoder(view))) for view in (view_a, view_b)]
            )
        }

    def embed_targets(
        self, views: Mapping[str, torch.Tensor], progress: StepProgress
    ) -> dict[str, torch.Tensor]:
        """``{"targets": (2B, D)}``: the EMA target g'(f'(x)) of each view, laid out as the predictions."""
        return {"targets": torch.cat([self.target(view) for view in views["global"].chunk(2)])}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        prediction_a, prediction_b = embeddings["predictions"].chunk(2)  # (B, D) each
        target_a, target_b = embeddings["targets"].chunk(2)
        # The cosine needs more precision than bf16 (as SimCLR's loss does): at least float32.
        with torch.autocast(device_type=prediction_a.device.type, enabled=False):
            loss = symmetric_regression_loss(
                *(at_least_float32(t) for t in (prediction_a, prediction_b, target_a, target_b))
            )
        return MethodOutput(loss)

    def momentum_updates(self, progress: StepProgress) -> list[tuple[MomentumTarget, float]]:
        """tau after ``progress.step`` optimizer steps of ``total_steps``: tau_base at 0, exactly 1 at the end."""
        tau = cosine_schedule(
            self.params.base_momentum, self.params.final_momentum, progress.step, progress.total_steps
        )
        return [(self.target, tau)]
