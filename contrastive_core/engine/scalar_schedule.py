"""Schedules of a scalar hyperparameter, evaluated on the host from step counts.

Self-supervised methods change some scalars during training besides the learning rate: BYOL (Grill et
al. 2020, Sec. 3.2) raises the target network's EMA momentum tau from 0.996 to 1 with a cosine,
``tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2`` at step k of K; DINO (Caron et al. 2021,
"Emerging Properties in Self-Supervised Vision Transformers", implementation details) warms its teacher
temperature up linearly from 0.04 to 0.07 over the first 30 epochs, then keeps it constant.

The functions here take host-side ``int`` step counts and return a Python ``float``, so a schedule costs
nothing on the device and never synchronises with it; pass the result to
:meth:`~contrastive_core.components.MomentumTarget.update` or use it as a Python scalar inside
``forward`` (``logits / temperature``).

* :func:`cosine_schedule` / :class:`CosineSchedule`: half a cosine from ``start`` (step 0) to ``end``
  (step ``total_steps`` and after).
* :func:`linear_warmup` / :class:`WarmupThenConstant`: a straight line from ``start`` (step 0) to ``end``
  (step ``warmup_steps``), then ``end``.

Usage in a method plugin::

    from contrastive_core.engine import CosineSchedule, WarmupThenConstant, cosine_schedule

    tau = cosine_schedule(0.996, 1.0, progress.step, progress.total_steps)  # BYOL's tau


    class MyDINO(Method):
        teacher_temperature = WarmupThenConstant(0.04, 0.07)
        momentum = CosineSchedule(0.996, 1.0)

        def forward(self, views, progress):
            warmup = 30 * progress.steps_per_epoch
            temperature = self.teacher_temperature(progress.step, warmup)  # a float
            teacher_probs = torch.softmax(teacher_logits / temperature, dim=-1)  # (B, K)
            ...

        def momentum_updates(self, progress):
            return [(self.teacher, self.momentum(progress.step, progress.total_steps))]
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

__all__ = ["CosineSchedule", "WarmupThenConstant", "cosine_schedule", "linear_warmup"]


def cosine_schedule(start: float, end: float, step: int, total_steps: int) -> float:
    """``end - (end - start) * (1 + cos(pi * step / total_steps)) / 2``; ``end`` once ``step >= total_steps``.

    ``start`` at step 0, ``(start + end) / 2`` halfway, ``end`` at ``total_steps``; monotone in between
    (increasing when ``end > start``). BYOL's tau: ``cosine_schedule(0.996, 1.0, k, K)``.

    Raises ``ValueError`` unless ``step >= 0`` and ``total_steps >= 1`` (``TypeError`` unless both are
    ints) and ``start``, ``end`` are finite.
    """
    start, end = _check_values(start, end)
    step = _check_count("step", step, minimum=0)
    total_steps = _check_count("total_steps", total_steps, minimum=1)
    if step >= total_steps:
        return end
    return end - (end - start) * (1.0 + math.cos(math.pi * step / total_steps)) / 2.0


def linear_warmup(start: float, end: float, step: int, warmup_steps: int) -> float:
    """``start + (end - start) * step / warmup_steps`` during the warmup, ``end`` once ``step >= warmup_steps``.

    DINO's teacher temperature: ``linear_warmup(0.04, 0.07, step, 30 * steps_per_epoch)``.
    ``warmup_steps = 0`` means no warmup (always ``end``).

    Raises ``ValueError`` unless ``step >= 0`` and ``warmup_steps >= 0`` (``TypeError`` unless both are
    ints) and ``start``, ``end`` are finite.
    """
    start, end = _check_values(start, end)
    step = _check_count("step", step, minimum=0)
    warmup_steps = _check_count("warmup_steps", warmup_steps, minimum=0)
    if step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


@dataclass(frozen=True)
class CosineSchedule:
    """:func:`cosine_schedule` from ``start`` to ``end``, kept as an attribute: ``schedule(step, total_steps)``."""

    start: float
    end: float

    def __post_init__(self) -> None:
        _check_values(self.start, self.end)

    def __call__(self, step: int, total_steps: int) -> float:
        return cosine_schedule(self.start, self.end, step, total_steps)


@dataclass(frozen=True)
class WarmupThenConstant:
    """:func:`linear_warmup` from ``start`` to ``end``, then ``end``: ``schedule(step, warmup_steps)``."""

    start: float
    end: float

    def __post_init__(self) -> None:
        _check_values(self.start, self.end)

    def __call__(self, step: int, warmup_steps: int) -> float:
        return linear_warmup(self.start, self.end, step, warmup_steps)


def _check_values(start: float, end: float) -> tuple[float, float]:
    values = []
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"a schedule's {name} must be a host float, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"a schedule's {name} must be finite, got {value!r}")
        values.append(float(value))
    return values[0], values[1]


def _check_count(name: str, value: int, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a host int (a step count), got {type(value).__name__}; "
            "schedules are evaluated on the host, never from device tensors"
        )
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
