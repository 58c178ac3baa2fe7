"""warmup_cosine: the learning rate at the landmarks of the schedule, resuming, and the warmup checks.

Schedule under test (W warmup steps, T total steps, r = min_lr_ratio, step s counted from 0):
s < W: base * (s + 1) / (W + 1); W <= s <= T: base * (r + (1 - r) * (1 + cos(pi * (s - W) / (T - W))) / 2).
"""

from __future__ import annotations

import copy
import math
from itertools import pairwise

import pytest
import torch
from torch import nn

import contrastive_plugins.simclr.plugin as simclr_plugin
from contrastive_core import RecipeError, Registry, build, get_plugin_manager
from contrastive_core.errors import ContrastiveError

BASE_LR = 2.0
STEPS_PER_EPOCH = 10
TOTAL_STEPS = 100


@pytest.fixture(scope="module")
def registry() -> Registry:
    manager = get_plugin_manager(autoload=False)
    manager.register(simclr_plugin, name="simclr")
    return Registry.from_plugin_manager(manager, strict=False)


def make_optimizer(registry: Registry) -> torch.optim.Optimizer:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))  # two param groups, both at BASE_LR
    params = {"type": "sgd", "lr": BASE_LR, "lr_scaling": "none"}
    return build("optimizer", params, registry=registry, model=model)


def make_scheduler(registry: Registry, optimizer: torch.optim.Optimizer, **params: float):
    return build(
        "scheduler",
        {"type": "warmup_cosine", **params},
        registry=registry,
        optimizer=optimizer,
        total_steps=TOTAL_STEPS,
        steps_per_epoch=STEPS_PER_EPOCH,
    )


def learning_rates(registry: Registry, steps: int = TOTAL_STEPS + 5, **params: float) -> list[float]:
    """The lr used by optimiser steps 0, 1, ..., steps - 1 (the engine steps the scheduler after each)."""
    optimizer = make_optimizer(registry)
    scheduler = make_scheduler(registry, optimizer, **params)
    rates = []
    for _ in range(steps):
        assert len({group["lr"] for group in optimizer.param_groups}) == 1
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_landmarks(registry: Registry) -> None:
    warmup = 20  # 2 epochs of 10 steps
    rates = learning_rates(registry, warmup_epochs=2, min_lr_ratio=0.1)

    assert rates[0] == pytest.approx(BASE_LR / (warmup + 1))  # warmup starts near 0, not at 0
    assert rates[warmup - 1] == pytest.approx(BASE_LR * warmup / (warmup + 1))
    assert rates[warmup] == pytest.approx(BASE_LR)  # warmup ends exactly at the peak
    midpoint = warmup + (TOTAL_STEPS - warmup) // 2
    assert rates[midpoint] == pytest.approx(BASE_LR * (0.1 + 0.9 * 0.5))
    assert rates[TOTAL_STEPS - 1] == pytest.approx(
        BASE_LR * (0.1 + 0.9 * (1 + math.cos(math.pi * 79 / 80)) / 2)
    )
    assert rates[TOTAL_STEPS] == pytest.approx(BASE_LR * 0.1)  # the end of the cosine
    assert rates[TOTAL_STEPS + 4] == pytest.approx(BASE_LR * 0.1)  # and it stays there

    warmup_part, decay_part = rates[: warmup + 1], rates[warmup : TOTAL_STEPS + 1]
    assert all(a < b for a, b in pairwise(warmup_part))
    assert all(a > b for a, b in pairwise(decay_part))
    steps = [b - a for a, b in pairwise(warmup_part)]
    assert max(steps) == pytest.approx(min(steps))  # linear


def test_defaults_are_simclr(registry: Registry) -> None:
    """10 warmup epochs, decay to 0."""
    rates = learning_rates(registry)
    assert rates[0] == pytest.approx(BASE_LR / 101)
    assert rates[99] == pytest.approx(BASE_LR * 100 / 101)
    assert rates[100] == pytest.approx(BASE_LR)  # warmup == total is allowed: warmup only
    assert rates[104] == pytest.approx(BASE_LR)


def test_no_warmup_starts_at_the_peak(registry: Registry) -> None:
    rates = learning_rates(registry, warmup_epochs=0)
    assert rates[0] == pytest.approx(BASE_LR)
    assert rates[50] == pytest.approx(BASE_LR / 2)
    assert rates[100] == pytest.approx(0.0, abs=1e-15)


def test_fractional_warmup_epochs_round_to_steps(registry: Registry) -> None:
    rates = learning_rates(registry, warmup_epochs=0.5)  # 5 steps
    assert rates[4] == pytest.approx(BASE_LR * 5 / 6)
    assert rates[5] == pytest.approx(BASE_LR)


def test_scales_each_group_from_its_own_initial_lr(registry: Registry) -> None:
    optimizer = make_optimizer(registry)
    optimizer.param_groups[1]["initial_lr"] = 0.5  # e.g. a group the optimizer scaled differently
    scheduler = make_scheduler(registry, optimizer, warmup_epochs=0)
    for _ in range(50):
        optimizer.step()
        scheduler.step()
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([BASE_LR / 2, 0.25])


def test_state_dict_resume_continues_the_schedule(registry: Registry) -> None:
    params = {"warmup_epochs": 2, "min_lr_ratio": 0.05}
    uninterrupted = learning_rates(registry, **params)

    optimizer = make_optimizer(registry)
    scheduler = make_scheduler(registry, optimizer, **params)
    for _ in range(37):
        optimizer.step()
        scheduler.step()
    checkpoint = copy.deepcopy({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})

    resumed_optimizer = make_optimizer(registry)
    resumed_scheduler = make_scheduler(registry, resumed_optimizer, **params)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    resumed = []
    for _ in range(37, TOTAL_STEPS + 5):
        resumed.append(resumed_optimizer.param_groups[0]["lr"])
        resumed_optimizer.step()
        resumed_scheduler.step()
    assert resumed == pytest.approx(uninterrupted[37:], rel=1e-12)
    # The checkpoint records the schedule's shape, not only the step count.
    assert checkpoint["scheduler"]["lr_lambdas"][0] == {
        "warmup_steps": 20,
        "total_steps": 100,
        "min_lr_ratio": 0.05,
    }


def test_warmup_longer_than_the_run_is_an_error(registry: Registry) -> None:
    with pytest.raises(ValueError, match="warmup_epochs"):
        make_scheduler(registry, make_optimizer(registry), warmup_epochs=10.5)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"type": "warmup_cosine", "warmup_epochs": -1}, "warmup_epochs"),
        ({"type": "warmup_cosine", "min_lr_ratio": 1.5}, "min_lr_ratio"),
        ({"type": "warmup_cosine", "warmup_steps": 5}, "warmup_steps"),
    ],
)
def test_bad_params_are_recipe_errors(registry: Registry, params: dict, key: str) -> None:
    with pytest.raises(RecipeError, match=key):
        build(
            "scheduler",
            params,
            registry=registry,
            optimizer=make_optimizer(registry),
            total_steps=10,
            steps_per_epoch=1,
        )


def test_bad_run_lengths_are_errors(registry: Registry) -> None:
    with pytest.raises(ValueError, match="total_steps"):
        build("scheduler", {"type": "warmup_cosine"}, registry=registry, optimizer=make_optimizer(registry),
              total_steps=0, steps_per_epoch=1)  # fmt: skip


def _adamw(registry: Registry) -> torch.optim.Optimizer:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))  # weights decayed; bias and BN exempt
    params = {"type": "adamw", "lr": BASE_LR, "weight_decay": 0.04}
    return build("optimizer", params, registry=registry, model=model)


def test_weight_decay_end_drives_a_cosine_of_the_decayed_groups_only(registry: Registry) -> None:
    optimizer = _adamw(registry)
    scheduler = make_scheduler(registry, optimizer, warmup_epochs=1, weight_decay_end=0.4)
    decayed, exempt = [], []
    for _ in range(TOTAL_STEPS + 3):
        decayed.append(optimizer.param_groups[0]["weight_decay"])
        exempt.append(optimizer.param_groups[1]["weight_decay"])
        optimizer.step()
        scheduler.step()
    # DINO's schedule: 0.4 + (0.04 - 0.4) (1 + cos(pi s / T)) / 2, no warmup, 0.4 from step T on.
    expected = [
        0.4 + (0.04 - 0.4) * (1 + math.cos(math.pi * min(s, TOTAL_STEPS) / TOTAL_STEPS)) / 2
        for s in range(TOTAL_STEPS + 3)
    ]
    assert decayed == pytest.approx(expected, rel=1e-12)
    assert (
        decayed[0] == pytest.approx(0.04)
        and decayed[50] == pytest.approx(0.22)
        and decayed[-1] == pytest.approx(0.4)
    )
    assert exempt == [0.0] * len(exempt)


def test_weight_decay_schedule_resumes_from_a_state_dict(registry: Registry) -> None:
    optimizer = _adamw(registry)
    scheduler = make_scheduler(registry, optimizer, warmup_epochs=1, weight_decay_end=0.4)
    for _ in range(37):
        optimizer.step()
        scheduler.step()
    saved_optimizer, saved_scheduler = (
        copy.deepcopy(optimizer.state_dict()),
        copy.deepcopy(scheduler.state_dict()),
    )
    resumed_optimizer = _adamw(registry)
    resumed = make_scheduler(registry, resumed_optimizer, warmup_epochs=1, weight_decay_end=0.4)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    for _ in range(5):
        for one, other in zip(optimizer.param_groups, resumed_optimizer.param_groups, strict=True):
            assert (one["lr"], one["weight_decay"]) == (other["lr"], other["weight_decay"])
        for optim, sched in ((optimizer, scheduler), (resumed_optimizer, resumed)):
            optim.step()
            sched.step()


def test_without_weight_decay_end_the_weight_decay_stays(registry: Registry) -> None:
    optimizer = _adamw(registry)
    scheduler = make_scheduler(registry, optimizer, warmup_epochs=1)
    for _ in range(20):
        optimizer.step()
        scheduler.step()
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0.04, 0.0]


def test_weight_decay_end_without_weight_decay_is_an_error(registry: Registry) -> None:
    optimizer = make_optimizer(registry)  # sgd with weight_decay 0 on both groups
    for group in optimizer.param_groups:
        group["weight_decay"] = 0.0
    with pytest.raises(ContrastiveError, match="no weight decay to schedule"):
        make_scheduler(registry, optimizer, warmup_epochs=1, weight_decay_end=0.4)
