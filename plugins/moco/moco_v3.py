"""MoCo v3 as a method, in its ResNet-50 setting (Chen, Xie, He 2021, "An Empirical Study of Training
Self-Supervised Vision Transformers", arXiv:2104.02057, Sec. 3 and Algorithm 1).

An online network (encoder f, projector g, predictor h) and a momentum network (f' and g', no
predictor, moved by EMA) encode both views of every image, each view in its own pass:

    q1 = h(g(f(x1))), q2 = h(g(f(x2))),   k1 = g'(f'(x1)), k2 = g'(f'(x2)),

and the loss is the symmetrised contrastive loss ctr(q1, k2) + ctr(q2, k1)
(:func:`.contrastive_loss.contrastive_loss`), whose negatives are the keys of the other images of the
global batch: there is no queue. The momentum starts at 0.99 and rises to 1 on a cosine schedule. The
ResNet-50 setting uses tau = 1.0, a 2-layer projector and predictor (hidden 4096, output 256), BN on
every projector layer (the last without affine parameters) and on the predictor's hidden layer, and
LARS; the heads and optimizer are the recipe's. The encoder f is what is exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from contrastive_core import (
    ComponentParams,
    Method,
    MethodOutput,
    MethodParts,
    Problem,
    StepProgress,
    ViewGroup,
)
from contrastive_core.components import MomentumTarget, check_temperature, temperature_warnings
from contrastive_core.engine import cosine_schedule

from .contrastive_loss import contrastive_loss

__all__ = ["MoCoV3", "MoCoV3Params"]


class MoCoV3Params(ComponentParams):
    type: Literal["moco_v3"] = "moco_v3"

    momentum: float = Field(0.99, ge=0, le=1)
    """m at the first step, raised to 1 at the last by a half-cosine schedule (Chen, Xie, He 2021,
    appendix, ResNet-50 implementation details: m = 0.99, increased to 1 with a cosine schedule as in
    BYOL; the reference code's --moco-m 0.99 with --moco-m-cos). Applied per optimizer step here."""

    temperature: float = Field(1.0, gt=0)
    """tau of ctr(q, k) (Chen, Xie, He 2021, appendix, ResNet-50 setting: tau = 1.0, the reference
    code's default --moco-t 1.0; the ViT setting uses 0.2)."""

    @field_validator("temperature")
    @classmethod
    def _usable_temperature(cls, value: float) -> float:
        return check_temperature(value)

    def recipe_warnings(self) -> list[Problem]:
        return temperature_warnings(self.temperature, (0.05, 1.0), "MoCo v3: 1.0 for ResNet-50, 0.2 for ViT")


class MoCoV3(Method):
    """MoCo v3: ctr(h(g(f(x1))), g'(f'(x2))) + ctr(h(g(f(x2))), g'(f'(x1))), negatives from the global batch.

    ``views["global"]`` is ``(2B, C, H, W)``, rows i and B + i the two views of image
    i. Each view runs through the networks on its own (B rows per pass), as in the paper's
    implementation, so that batch-norm statistics are those of one view's batch.
    """

    name: ClassVar[str] = "moco_v3"
    Params: ClassVar[type[ComponentParams]] = MoCoV3Params
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head", "model.predictor")

    params: MoCoV3Params

    def __init__(self, params: MoCoV3Params, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head  # the projector g: (B, F) -> (B, d)
        self.predictor = parts.predictor  # h: (B, d) -> (B, d)
        # The momentum network follows f then g (no predictor). The Sequential only groups them for the
        # copy: it is not kept as a submodule, so each online layer is saved once in the method's state.
        self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"queries": (2B, d)}``: q(g(f(x))) of each view, rows i and B + i image i's two views."""
        first, second = views["global"].chunk(2)  # two (B, C, H, W) views, row i of each of image i
        return {
            "queries": torch.cat([self.predictor(self.head(self.encoder(view))) for view in (first, second)])
        }

    def embed_targets(
        self, views: Mapping[str, torch.Tensor], progress: StepProgress
    ) -> dict[str, torch.Tensor]:
        """``{"keys": (2B, d)}``: the momentum encoder's keys of each view, laid out as the queries."""
        return {"keys": torch.cat([self.target(view) for view in views["global"].chunk(2)])}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        query_1, query_2 = embeddings["queries"].chunk(2)  # (B, d) each
        key_1, key_2 = embeddings["keys"].chunk(2)
        temperature = self.params.temperature
        # In float32 with autocast off (inside the loss): logits over tau need more than bf16.
        loss = contrastive_loss(query_1, key_2, temperature) + contrastive_loss(query_2, key_1, temperature)
        return MethodOutput(loss)

    def momentum_updates(self, progress: StepProgress) -> list[tuple[MomentumTarget, float]]:
        """m after ``progress.step`` optimizer steps of ``total_steps``: ``momentum`` at 0, exactly 1 at the end."""
        momentum = cosine_schedule(self.params.momentum, 1.0, progress.step, progress.total_steps)
        return [(self.target, momentum)]
