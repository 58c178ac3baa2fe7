"""The ``warmup_cosine`` scheduler: linear warmup, then cosine decay without restarts, per step.

SimCLR (Chen et al., 2020, Sec. 2.3 "Default setting"): linear warmup for the first 10 epochs, then the
cosine decay schedule without restarts (Loshchilov & Hutter, 2017). With W warmup steps and T total
steps, the learning rate of optimiser step s (counted from 0) is ``base_lr * factor(s)`` with::

    factor(s) = (s + 1) / (W + 1)                                        for s < W
    factor(s) = r + (1 - r) * (1 + cos(pi * (s - W) / (T - W))) / 2      for W <= s <= T

where r = ``min_lr_ratio``. Warmup therefore starts at base_lr / (W + 1), not at 0 (a first step with
lr 0 would be wasted), and reaches exactly base_lr at step W, where the decay begins; the decay ends at
r * base_lr at step T. Steps past T keep r * base_lr. ``base_lr`` is each param group's
``"initial_lr"``, i.e. the batch-scaled rate the optimizer component set.

``weight_decay_end`` makes the schedule drive the weight decay too: every param group with a non-zero
weight decay goes from its own value at step 0 to ``weight_decay_end`` at step T on half a cosine,
``wd(s) = wd_end + (wd_0 - wd_end) * (1 + cos(pi * s / T)) / 2``, without warmup (DINO, Caron et al.
2021, Sec. 3.2, implementation details: 0.04 to 0.4); groups exempt from weight decay keep 0.

Warmup longer than the run is rejected (``ValueError``) instead of silently truncated: a clamped warmup
would never reach the configured learning rate, which is a different experiment from the one the recipe
describes. Lower ``warmup_epochs`` for short runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from contrastive_core import ComponentParams, Scheduler
from contrastive_core.engine import cosine_schedule
from contrastive_core.errors import ContrastiveError


@dataclass
class WarmupCosineFactor:
    """factor(step) of the module docstring. A callable object (not a closure), so that
    ``LambdaLR.state_dict()`` saves its fields and a checkpoint records the schedule it was made with."""

    warmup_steps: int
    total_steps: int
    min_lr_ratio: float

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        decay_steps = self.total_steps - self.warmup_steps
        if decay_steps == 0:  # all warmup: stay at the peak.
            return 1.0
        progress = min((step - self.warmup_steps) / decay_steps, 1.0)
        cosine = (1.0 + math.cos(math.pi * progress)) / 2.0
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


class LambdaLRWithWeightDecay(torch.optim.lr_scheduler.LambdaLR):
    """``LambdaLR`` that also sets each param group's ``weight_decay`` at every step: a cosine from the
    group's ``initial_weight_decay`` (its value when the scheduler was built) to ``weight_decay_end`` at
    ``total_steps``, for groups whose initial weight decay is not 0.

    The end value and step count are attributes, so ``state_dict()`` saves them with the step; the
    groups' initial values travel in the optimizer's own state dict."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, lr_lambda: Any, *, weight_decay_end: float, total_steps: int
    ) -> None:
        self.weight_decay_end = weight_decay_end
        self.weight_decay_steps = total_steps
        for group in optimizer.param_groups:
            group.setdefault("initial_weight_decay", group["weight_decay"])
        super().__init__(optimizer, lr_lambda)  # its first step() sets the weight decay of step 0

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        super().step() if epoch is None else super().step(epoch)
        step = max(int(self.last_epoch), 0)
        for group in self.optimizer.param_groups:
            initial = group["initial_weight_decay"]
            if initial != 0:
                group["weight_decay"] = cosine_schedule(
                    initial, self.weight_decay_end, step, self.weight_decay_steps
                )


class WarmupCosineParams(ComponentParams):
    type: Literal["warmup_cosine"] = "warmup_cosine"

    warmup_epochs: float = Field(default=10.0, ge=0)
    """Length of the linear warmup in epochs (fractional allowed, rounded to steps); SimCLR: 10."""

    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    """Final learning rate as a fraction of the peak rate; SimCLR decays to 0."""

    weight_decay_end: float | None = Field(default=None, ge=0)
    """None: the weight decay stays the optimizer's. A value: every param group with weight decay moves
    from the optimizer's value to this one on a cosine over the run (DINO, Caron et al. 2021, ViT
    setting: 0.04 to 0.4)."""


class ScheduleError(ContrastiveError, ValueError):
    """A schedule that cannot fit the run (reported by the CLI as a clean error, exit code 2)."""


class WarmupCosine(Scheduler):
    """Linear warmup then cosine decay to min_lr_ratio * lr, stepped once per optimiser step (SimCLR);
    optionally a cosine of the weight decay too (DINO)."""

    name: ClassVar[str] = "warmup_cosine"
    Params: ClassVar[type[ComponentParams]] = WarmupCosineParams

    @classmethod
    def from_params(  # type: ignore[override]
        cls,
        params: WarmupCosineParams,
        *,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        steps_per_epoch: int,
        **context: Any,
    ) -> torch.optim.lr_scheduler.LambdaLR:
        if total_steps < 1 or steps_per_epoch < 1:
            raise ScheduleError(
                f"warmup_cosine needs total_steps >= 1 and steps_per_epoch >= 1, got {total_steps} and "
                f"{steps_per_epoch}"
            )
        warmup_steps = round(params.warmup_epochs * steps_per_epoch)
        if warmup_steps > total_steps:
            raise ScheduleError(
                f"warmup_cosine: warmup_epochs = {params.warmup_epochs} is {warmup_steps} steps, longer than "
                f"the whole run ({total_steps} steps = {total_steps / steps_per_epoch:g} epochs); set "
                "scheduler.warmup_epochs to at most the number of epochs"
            )
        factor = WarmupCosineFactor(warmup_steps, total_steps, params.min_lr_ratio)
        if params.weight_decay_end is None:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
        if all(group.get("weight_decay", 0) == 0 for group in optimizer.param_groups):
            raise ScheduleError(
                "warmup_cosine: weight_decay_end is set but the optimizer has no weight decay to schedule; "
                "set optimizer.weight_decay to the starting value (DINO: 0.04)"
            )
        return LambdaLRWithWeightDecay(
            optimizer, factor, weight_decay_end=params.weight_decay_end, total_steps=total_steps
        )
