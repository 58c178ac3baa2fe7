"""DINO as a method (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers",
arXiv:2104.14294, Sec. 3.1, Algorithm 1 and Sec. 3.2, "Implementation details").

Self-distillation without labels: a *student* (encoder f_s and DINO head g_s, trained by gradient) is
trained to match the output distribution of a *teacher* (an EMA of the student, no gradient) on another
view of the same image. The teacher sees the two global views only; the student sees all of them, the
small local crops included ("local-to-global" correspondences, multi-crop). The teacher's logits are
centred (:class:`.centre.Centre`, an EMA of their batch mean) and sharpened with a low temperature
(0.04 warmed up to 0.07 over the first 30 epochs), the student's softened with 0.1; the loss is the
cross-entropy over every (global, other) pair of views (:func:`.loss.dino_loss`).

After each optimizer step the teacher follows the student with a momentum raised from 0.996 to 1 on a
cosine; the centre moves with momentum 0.9 in the forward pass, once the loss has used its value from
before the step (as in the reference code). The head's last layer is frozen during the first epoch
(its gradient cancelled). The teacher's encoder is what is exported and evaluated: the paper evaluates
the teacher, which is the better network throughout training (Sec. 5.2, Fig. 6).

The student's encoder runs once per resolution group (once on the 2B global views, once on the VB local
ones) and its head once on all of them, as the reference code batches them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn
from torchvision.ops import StochasticDepth

from contrastive_core import (
    ComponentParams,
    Encoder,
    Method,
    MethodOutput,
    MethodParts,
    StepProgress,
    ViewGroup,
)
from contrastive_core.components import FrozenForSteps, MomentumTarget
from contrastive_core.engine import at_least_float32, cosine_schedule, linear_warmup

from .centre import Centre
from .loss import dino_loss

__all__ = ["DINO", "DINOParams"]

#: The views the teacher sees: the two global views (Sec. 3.1).
GLOBAL_VIEWS = 2


class DINOParams(ComponentParams):
    type: Literal["dino"] = "dino"

    student_temperature: float = Field(0.1, gt=0)
    """tau_s, the student's softmax temperature (Sec. 3.2, implementation details: 0.1)."""

    teacher_temperature: float = Field(0.07, gt=0)
    """tau_t after its warmup (Sec. 3.2, implementation details: 0.07)."""

    warmup_teacher_temperature: float = Field(0.04, gt=0)
    """tau_t at the first step, raised linearly to ``teacher_temperature`` (Sec. 3.2: from 0.04)."""

    warmup_teacher_temperature_epochs: float = Field(30.0, ge=0)
    """The epochs of that linear warmup (Sec. 3.2: the first 30 epochs; the released ResNet-50 used 50).
    The temperature rises at every step, reaching its final value at the end of the warmup; the
    reference code holds it per epoch (reaching 0.07 in the warmup's last epoch)."""

    base_momentum: float = Field(0.996, ge=0, le=1)
    """The teacher's EMA momentum at the first step, raised to ``final_momentum`` on a cosine (Sec. 3.1:
    "lambda following a cosine schedule from 0.996 to 1 during training")."""

    final_momentum: float = Field(1.0, ge=0, le=1)
    """The teacher's momentum at the last step (Sec. 3.1: 1)."""

    centre_momentum: float = Field(0.9, ge=0, lt=1)
    """m of the centre's EMA (Sec. 3.1, eq. 4; the reference code's center_momentum 0.9)."""

    freeze_last_layer_epochs: float = Field(1.0, ge=0)
    """The head's last layer gets no update during this many epochs (the reference code's
    freeze_last_layer = 1: "it helps training")."""


class DINO(Method):
    """DINO: the student on every view matches the centred, sharpened EMA teacher on the global views.

    ``views["global"]`` is ``(2B, C, H, W)`` (rows i and B + i: image i) and the
    optional ``views["local"]`` is ``(VB, C, h, w)``, smaller crops of the same images in the same order.
    ``[model.head]`` is the head of both networks, normally a ``dino_head``.
    """

    name: ClassVar[str] = "dino"
    Params: ClassVar[type[ComponentParams]] = DINOParams
    views: ClassVar[tuple[ViewGroup, ...]] = (
        ViewGroup("global", GLOBAL_VIEWS),
        ViewGroup("local", None, optional=True),
    )
    requires: ClassVar[tuple[str, ...]] = ("model.head",)

    def __init__(self, params: DINOParams, parts: MethodParts) -> None:
        super().__init__(params, parts)
        self.head = parts.head  # g_s: (N, F) -> (N, K) logits
        # The teacher follows f_s then g_s; the Sequential only groups them for the copy.
        self.teacher = MomentumTarget(nn.Sequential(self.encoder, self.head))
        # The reference builds its teacher without stochastic depth (drop_path_rate 0): targets are
        # not noised. BatchNorm, if any, still uses batch statistics in both networks, as there.
        for module in self.teacher.network.modules():
            if isinstance(module, StochasticDepth):
                module.p = 0.0
            elif type(module).__name__ == "DropPath" and hasattr(module, "drop_prob"):
                # timm's DropPath (timm.layers), in the networks of the timm encoder (timm imported
                # here only for this would make it a dependency of DINO).
                module.drop_prob = 0.0
        self.centre = Centre(parts.head.out_dim)

    def teacher_temperature(self, progress: StepProgress) -> float:
        """tau_t at this step: linear from the warmup value to the final one, then constant (host float)."""
        warmup = round(self.params.warmup_teacher_temperature_epochs * progress.steps_per_epoch)
        return linear_warmup(
            self.params.warmup_teacher_temperature, self.params.teacher_temperature, progress.step, warmup
        )

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> dict[str, torch.Tensor]:
        """``{"student": (V B, K)}``: the student's outputs, global views then local ones, view-major."""
        groups = [views["global"]] + ([views["local"]] if "local" in views else [])
        # The student: its encoder once per resolution group, its head once on every view.
        return {"student": self.head(torch.cat([self.encoder(group) for group in groups]))}

    def embed_targets(
        self, views: Mapping[str, torch.Tensor], progress: StepProgress
    ) -> dict[str, torch.Tensor]:
        """``{"teacher": (2 B, K)}``: the teacher's outputs on the two global views only."""
        return {"teacher": self.teacher(views["global"])}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        student, teacher = embeddings["student"], embeddings["teacher"]
        batch = teacher.shape[0] // GLOBAL_VIEWS
        # Softmaxes over 65,536 logits at temperatures of 0.04-0.1 need float32 at least.
        with torch.autocast(device_type=student.device.type, enabled=False):
            student, teacher = at_least_float32(student), at_least_float32(teacher)
            centred = teacher - self.centre.value.to(teacher.dtype)
            teacher_probabilities = torch.softmax(centred / self.teacher_temperature(progress), dim=-1)
            student_log_probabilities = torch.log_softmax(student / self.params.student_temperature, dim=-1)
            loss = dino_loss(
                teacher_probabilities.view(GLOBAL_VIEWS, batch, -1),
                student_log_probabilities.view(-1, batch, student.shape[-1]),
            )
            self.centre.update(teacher, self.params.centre_momentum)
        return MethodOutput(loss)

    def momentum_updates(self, progress: StepProgress) -> list[tuple[MomentumTarget, float]]:
        """The teacher's momentum for the update after a step, ``progress.step`` counting that step (the
        engine's convention, as for BYOL): just above 0.996 after the first, exactly 1 after the last."""
        momentum = cosine_schedule(
            self.params.base_momentum, self.params.final_momentum, progress.step, progress.total_steps
        )
        return [(self.teacher, momentum)]

    def frozen_parts(self, steps_per_epoch: int) -> list[FrozenForSteps]:
        """The head's last layer, if it has one (a ``dino_head``), for ``freeze_last_layer_epochs``."""
        last_layer = getattr(self.head, "last_layer", None)
        if not isinstance(last_layer, nn.Module):
            return []
        return [FrozenForSteps(last_layer, round(self.params.freeze_last_layer_epochs * steps_per_epoch))]

    def exported_encoder(self) -> Encoder:
        """The teacher's copy of the encoder (the paper evaluates the teacher)."""
        return self.teacher.network[0]
