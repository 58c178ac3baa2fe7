"""Every registered method with a momentum target avoids the known EMA mistakes, through the real step.

The mistakes, each seen in a public implementation:

* updating the target before the optimizer step, or more than once per step (moco#70), or averaging
  buffers (BatchNorm running statistics) along with the parameters (lucidrains/byol-pytorch#73): after
  each training step the target's parameters must be exactly ``m * before + (1 - m) * online_after``
  with the online parameters *after* that step's update, and its buffers must not be the online ones;
* a momentum schedule that reaches tau = 1 before the end of training (solo-learn#286), which freezes
  the target for the last steps: tau must be below 1 at every step but the last, and 1 at the last if
  the method's schedule ends at 1;
* gradients flowing into the target network.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_core import StepProgress, default_registry, validate_recipe
from contrastive_core.components import MomentumTarget
from tests.engine.method_steps import cpu_training_step, recipe_for

TOTAL_STEPS = 4


def _momentum_methods() -> list[str]:
    """Registered methods whose ``momentum_updates`` names at least one target."""
    registry = default_registry()
    names = []
    for name in registry.names("method"):
        recipe = validate_recipe(recipe_for(registry.get("method", name)), registry=registry)
        parts, _ = cpu_training_step(recipe, registry, total_steps=TOTAL_STEPS)
        if parts.method.momentum_updates(StepProgress(1, TOTAL_STEPS, TOTAL_STEPS)):
            names.append(name)
    return names


MOMENTUM_METHODS = _momentum_methods()


def test_the_built_in_momentum_methods_are_covered() -> None:
    assert {"byol", "moco_v2", "moco_v3"} <= set(MOMENTUM_METHODS)


def _step(name: str):
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", name)), registry=registry)
    return cpu_training_step(recipe, registry, total_steps=TOTAL_STEPS)


@pytest.mark.parametrize("name", MOMENTUM_METHODS)
def test_the_target_moves_once_per_step_after_the_optimizer_parameters_only(name: str) -> None:
    parts, step = _step(name)
    method = parts.method
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    calls: list[tuple[MomentumTarget, float]] = []
    for target, _ in method.momentum_updates(StepProgress(1, TOTAL_STEPS, TOTAL_STEPS)):
        original = target.update

        def counting(momentum: float, target=target, original=original) -> None:
            calls.append((target, momentum))
            original(momentum)

        target.update = counting
    for done in range(TOTAL_STEPS):
        updates = method.momentum_updates(StepProgress(done + 1, TOTAL_STEPS, TOTAL_STEPS))
        before = {
            id(target): {key: p.detach().clone() for key, p in target.network.named_parameters()}
            for target, _ in updates
        }
        calls.clear()
        step(images, StepProgress(done, TOTAL_STEPS, TOTAL_STEPS))
        assert [(id(t), m) for t, m in calls] == [(id(t), m) for t, m in updates]  # each target once
        for target, momentum in updates:
            online = dict(target.online.named_parameters())
            for key, parameter in target.network.named_parameters():
                assert not parameter.requires_grad and parameter.grad is None
                expected = momentum * before[id(target)][key] + (1 - momentum) * online[key].detach()
                torch.testing.assert_close(parameter, expected, rtol=1e-6, atol=1e-7)
            online_buffers = dict(target.online.named_buffers())
            running = [
                (key, buffer)
                for key, buffer in target.network.named_buffers()
                if key.endswith("running_mean")
            ]
            # Train-mode BN in the target keeps statistics of its own; copying the online ones is the bug.
            # (At the first step both networks still have the same weights, hence the same statistics.)
            assert done == 0 or all(not torch.equal(buffer, online_buffers[key]) for key, buffer in running)


@pytest.mark.parametrize("name", MOMENTUM_METHODS)
def test_the_momentum_reaches_its_final_value_only_at_the_last_step(name: str) -> None:
    parts, _ = _step(name)
    total = 1000
    schedule = [
        [m for _, m in parts.method.momentum_updates(StepProgress(done, total, 100))]
        for done in range(1, total + 1)
    ]
    for column in zip(*schedule, strict=True):
        assert all(0 <= m <= 1 for m in column)
        assert all(a <= b for a, b in zip(column, column[1:], strict=False))  # never decreases
        if column[-1] == 1.0:
            assert column[-2] < 1.0  # 1 is reached by the last update, not before it


@pytest.mark.parametrize(
    ("name", "first", "last"), [("byol", 0.996, 1.0), ("moco_v3", 0.99, 1.0), ("moco_v2", 0.999, 0.999)]
)
def test_the_published_momentum_schedules(name: str, first: float, last: float) -> None:
    parts, _ = _step(name)
    ((_, at_start),) = parts.method.momentum_updates(StepProgress(0, 1000, 100))
    ((_, at_end),) = parts.method.momentum_updates(StepProgress(1000, 1000, 100))
    ((_, halfway),) = parts.method.momentum_updates(StepProgress(500, 1000, 100))
    assert (at_start, at_end) == pytest.approx((first, last), abs=1e-12)
    assert halfway == pytest.approx((first + last) / 2, abs=1e-12)
