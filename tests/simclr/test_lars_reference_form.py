"""LARS with ``momentum_form = "reference"`` against a plain float64 implementation of
google-research/simclr's ``lars_optimizer.py`` update (``classic_momentum=True``), written here per
parameter with Python floats:

    g' = g + wd w (not for excluded parameters)
    trust = eta ||w|| / ||g'|| if ||w|| > 0 and ||g'|| > 0 else 1 (1 for excluded parameters)
    v = m v + lr trust g'
    w = w - v
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from contrastive_plugins.simclr.optim.lars import LARS
from contrastive_plugins.simclr.optim.lars_component import LARSOptimizer, LARSOptimizerParams
from contrastive_plugins.simclr.optim.warmup_cosine import WarmupCosine, WarmupCosineParams

from .test_lars import (
    ETA,
    EXCLUDED_NAMES,
    MOMENTUM,
    WEIGHT_DECAY,
    ScalarReadRecorder,
    backward_on_batch,
    make_model,
)


class ReferenceFormLARS:
    """google-research/simclr's update, one parameter at a time."""

    def __init__(self, named_params: list[tuple[str, nn.Parameter]], excluded: set[str]) -> None:
        self.named_params = named_params
        self.excluded = excluded
        self.velocities: dict[str, torch.Tensor] = {}

    def step(self, lr: float) -> None:
        with torch.no_grad():
            for name, w in self.named_params:
                if w.grad is None:
                    continue
                g = w.grad.clone()
                trust = 1.0
                if name not in self.excluded:
                    g = g + WEIGHT_DECAY * w
                    w_norm = math.sqrt(float((w * w).sum()))
                    g_norm = math.sqrt(float((g * g).sum()))
                    if w_norm > 0 and g_norm > 0:
                        trust = ETA * w_norm / g_norm
                v = self.velocities.get(name, torch.zeros_like(w))
                v = MOMENTUM * v + lr * trust * g
                self.velocities[name] = v
                w -= v


def reference_lars_for(
    model: nn.Module, exclude: str = "bn_and_bias", lr: float = 1.0
) -> torch.optim.Optimizer:
    params = LARSOptimizerParams(
        lr=lr,
        lr_scaling="none",
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        exclude=exclude,
        momentum_form="reference",
    )
    return LARSOptimizer.from_params(params, model=model)


@pytest.mark.parametrize(("exclude", "excluded"), [("bn_and_bias", EXCLUDED_NAMES), ("none", set())])
def test_reference_form_matches_google_research_over_warmup_and_decay(
    exclude: str, excluded: set[str]
) -> None:
    """60 steps of the recipe's own schedule (10 warmup steps, then cosine): lr changes every step."""
    model = make_model()
    reference_model = copy.deepcopy(model)
    optimizer = reference_lars_for(model, exclude, lr=0.2)
    schedule = WarmupCosine.from_params(
        WarmupCosineParams(warmup_epochs=1), optimizer=optimizer, steps_per_epoch=10, total_steps=60
    )
    reference = ReferenceFormLARS(list(reference_model.named_parameters()), excluded)
    lrs = []
    for step in range(60):
        lr = optimizer.param_groups[0]["lr"]
        lrs.append(lr)
        backward_on_batch(model, step)
        backward_on_batch(reference_model, step)
        optimizer.step()
        reference.step(lr)
        schedule.step()
    assert lrs[0] < lrs[5] < lrs[9] and lrs[20] > lrs[59]  # the warmup and the decay both ran
    for (name, param), (_, expected) in zip(
        model.named_parameters(), reference_model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(param, expected, rtol=1e-9, atol=1e-12, msg=name)
    initial = dict(make_model().named_parameters())
    for name, param in model.named_parameters():
        if name not in ("unused", "conv.bias"):
            assert not torch.allclose(param, initial[name]), name


def warmup_moves(form: str, steps: int = 100) -> list[float]:
    """Per-step moves of one excluded scalar with gradient 1 under lr_t = t / steps (t = 1..steps)."""
    weight = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = LARS(
        [{"params": [weight], "lars_adaptation": False, "weight_decay": 0.0}], lr=1.0, momentum_form=form
    )
    moves = []
    for t in range(1, steps + 1):
        optimizer.param_groups[0]["lr"] = t / steps
        before = float(weight)
        weight.grad = torch.ones_like(weight)
        optimizer.step()
        moves.append(before - float(weight))
    return moves


def test_the_two_forms_differ_during_warmup_as_documented() -> None:
    """The figures of the module docstring: step ratio up to 1.59 (step 8), distance up to 1.56 (step 11),
    and the same update once lr is constant."""
    sgd, reference = warmup_moves("sgd"), warmup_moves("reference")
    ratios = [a / b for a, b in zip(sgd, reference, strict=True)]
    assert max(ratios) == pytest.approx(1.585, abs=1e-3)
    assert ratios.index(max(ratios)) + 1 == 8
    distance = [sum(sgd[:t]) / sum(reference[:t]) for t in range(1, 101)]
    assert max(distance) == pytest.approx(1.564, abs=1e-3)
    assert distance.index(max(distance)) + 1 == 11

    constant = []
    for form in ("sgd", "reference"):
        weight = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        optimizer = LARS([{"params": [weight], "lars_adaptation": False}], lr=0.5, momentum_form=form)
        for _ in range(20):
            weight.grad = torch.ones_like(weight)
            optimizer.step()
        constant.append(float(weight))
    assert constant[0] == pytest.approx(constant[1], rel=1e-12)


def test_reference_form_step_reads_no_tensor_value_on_the_host() -> None:
    model = make_model()
    optimizer = reference_lars_for(model)
    backward_on_batch(model, step=0)
    with ScalarReadRecorder() as recorder:
        optimizer.step()
        optimizer.step()
    assert recorder.reads == []


def test_a_state_of_the_other_form_is_refused_and_the_same_form_resumes() -> None:
    model = make_model()
    sgd_form = LARSOptimizer.from_params(LARSOptimizerParams(lr_scaling="none"), model=model)
    backward_on_batch(model, step=0)
    sgd_form.step()
    reference_form = reference_lars_for(make_model())
    with pytest.raises(ValueError, match='momentum_form = "sgd".*cannot be reused'):
        reference_form.load_state_dict(sgd_form.state_dict())
    again = reference_lars_for(make_model())
    reference_form.step()
    again.load_state_dict(reference_form.state_dict())
    assert again.param_groups[0]["momentum_form"] == "reference"


def test_an_unknown_form_is_refused() -> None:
    with pytest.raises(ValueError, match="momentum_form"):
        LARS([nn.Parameter(torch.ones(1))], lr=0.1, momentum_form="nesterov")  # type: ignore[arg-type]
