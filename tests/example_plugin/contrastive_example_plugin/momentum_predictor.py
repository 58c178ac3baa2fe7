"""A two-view method with a predictor, a momentum (EMA) target and a centred target: a small BYOL variant.

The online network (encoder f, head g, predictor q) predicts the target network's projection of the
other view, as in BYOL (Grill et al. 2020, "Bootstrap Your Own Latent", Sec. 3.1):

    loss = mean_i [ (2 - 2 cos(q(g(f(a_i))), t(b_i))) + (2 - 2 cos(q(g(f(b_i))), t(a_i))) ]

where t = g'(f'(.)) - c is the target network's projection minus a running centre c, as DINO centres its
teacher (Caron et al. 2021, Sec. 3.1): ``c <- m_c c + (1 - m_c) mean(t)`` over the *global* batch,
all-reduced so that every process holds the same centre. The target's weights follow the online ones by
EMA with the momentum raised from ``momentum`` to 1 on a cosine schedule. Optionally the predictor is
frozen for its first steps.

It shows every part of a stateful method: a predictor from ``[model.predictor]``, a momentum target, a
buffer checkpointed with the method, cross-process state and a frozen part.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from contrastive_core import (
    ComponentParams,
    Method,
    MethodOutput,
    MethodParts,
    PublishedSetting,
    StepProgress,
    ViewGroup,
)
from contrastive_core.components import FrozenForSteps, MomentumTarget
from contrastive_core.distributed import all_reduce_mean
from contrastive_core.engine import cosine_schedule


class MomentumPredictorParams(ComponentParams):
    type: Literal["momentum_predictor"]
    momentum: float = Field(0.99, ge=0, le=1)
    """EMA momentum of the target network at the first step, raised to 1 by a cosine schedule."""
    centre_momentum: float = Field(0.9, ge=0, le=1)
    """Momentum of the running centre subtracted from the target's projections."""
    freeze_predictor_steps: int = Field(0, ge=0)
    """Optimizer steps during which the predictor does not move (its gradients are cancelled)."""


class MomentumPredictor(Method):
    """Online encoder + head + predictor against an EMA target with a centred output (two views)."""

    name = "momentum_predictor"
    Params = MomentumPredictorParams
    views = (ViewGroup("global", 2),)
    requires = ("model.head", "model.predictor")
    # What ``contrastive lint`` compares this method's recipes with: a plugin's own published settings.
    published_settings = (
        PublishedSetting(
            "method.momentum",
            0.99,
            "this example's design notes",
            "a lower momentum makes the target chase the online network",
        ),
        PublishedSetting("model.predictor.hidden_dim", 32, "this example's design notes"),
    )

    def __init__(self, params: MomentumPredictorParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head
        self.predictor = parts.predictor
        # The online network f then g, as one module the target copies; not a submodule of its own.
        self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))
        self.register_buffer("centre", torch.zeros(parts.head.out_dim))
        self._frozen = [FrozenForSteps(self.predictor, params.freeze_predictor_steps)]

    def forward(self, views: dict[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        both = views["global"]  # (2B, C, H, W): rows i and B + i are the two views of image i
        predictions = self.predictor(self.head(self.encoder(both))).float()  # (2B, d)
        with torch.no_grad():
            projections = self.target(both).float()  # (2B, d), no gradient
            targets = projections - self.centre
            # Identical on every process: the mean over the global batch.
            batch_mean = all_reduce_mean(projections.mean(dim=0))
            self.centre.mul_(self.params.centre_momentum).add_(
                batch_mean, alpha=1 - self.params.centre_momentum
            )
        p_a, p_b = predictions.chunk(2)
        t_a, t_b = targets.chunk(2)
        loss = (2 - 2 * F.cosine_similarity(p_a, t_b, dim=1)).mean()
        loss = loss + (2 - 2 * F.cosine_similarity(p_b, t_a, dim=1)).mean()
        return MethodOutput(loss, {"centre_norm": self.centre.norm().detach()})

    def momentum_updates(self, progress: StepProgress) -> list[tuple[MomentumTarget, float]]:
        momentum = cosine_schedule(self.params.momentum, 1.0, progress.step, progress.total_steps)
        return [(self.target, momentum)]

    def frozen_parts(self, steps_per_epoch: int) -> list[FrozenForSteps]:
        return self._frozen
