"""The engine's helpers for method plugins: momentum targets, host-side scalar schedules, frozen parameters."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle

import pytest
import torch
from torch import nn

from contrastive_core.components import FrozenForSteps, MomentumTarget
from contrastive_core.engine import CosineSchedule, WarmupThenConstant, cosine_schedule, linear_warmup

MOMENTA = [0.0, 0.5, 0.996, 1.0]
# Tight enough that any wrong formula fails by many orders of magnitude; loose enough for the one-ulp
# difference a fused multiply-add may make against the two-rounding reference.
TIGHT = {"rtol": 1e-14, "atol": 1e-14}


def _linear() -> nn.Module:
    return nn.Linear(5, 3)


def _conv_bn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8, bias=False))


MODULES = {"linear": _linear, "conv_bn": _conv_bn, "mlp": _mlp}


def _perturb(module: nn.Module, scale: float = 1.0) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * scale)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def _reference_update(
    target: dict[str, torch.Tensor], online: nn.Module, m: float
) -> dict[str, torch.Tensor]:
    """The formula written out by hand, parameter by parameter."""
    return {name: m * target[name] + (1.0 - m) * param.detach() for name, param in online.named_parameters()}


def _assert_follows(target: MomentumTarget, before: dict[str, torch.Tensor], online: nn.Module, m: float):
    expected = _reference_update(before, online, m)
    for name, param in target.network.named_parameters():
        torch.testing.assert_close(param, expected[name], **TIGHT, msg=f"parameter {name}")


class _Parent(nn.Module):
    """A method-like module holding the online network and its momentum target."""

    def __init__(self, online: nn.Module, **kwargs) -> None:
        super().__init__()
        self.online = online
        self.target = MomentumTarget(online, **kwargs)


# --- MomentumTarget ---------------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("kind", sorted(MODULES))
def test_update_matches_the_formula_in_float64(kind: str, momentum: float) -> None:
    torch.manual_seed(0)
    online = MODULES[kind]().double()
    target = MomentumTarget(online)
    for _ in range(3):
        _perturb(online)
        before = {name: p.detach().clone() for name, p in target.network.named_parameters()}
        target.update(momentum)
        _assert_follows(target, before, online, momentum)
        for param in target.network.parameters():
            assert param.dtype == torch.float64
    if momentum == 0.0:
        for (_, t), (_, o) in zip(target.network.named_parameters(), online.named_parameters(), strict=True):
            assert torch.equal(t, o)


@pytest.mark.parametrize("momentum", MOMENTA)
def test_update_matches_the_formula_in_float32(momentum: float) -> None:
    torch.manual_seed(0)
    online = _conv_bn()
    target = MomentumTarget(online)
    _perturb(online)
    before = {name: p.detach().clone() for name, p in target.network.named_parameters()}
    target.update(momentum)
    expected = _reference_update(before, online, momentum)
    for name, param in target.network.named_parameters():
        assert param.dtype == torch.float32
        torch.testing.assert_close(param, expected[name], rtol=1e-6, atol=1e-6, msg=name)


def test_momentum_one_leaves_the_target_unchanged_bit_exactly() -> None:
    torch.manual_seed(0)
    online = _conv_bn()
    target = MomentumTarget(online)
    before = _snapshot(target)
    _perturb(online)
    target.update(1.0)
    after = _snapshot(target)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_buffers_are_untouched_by_default() -> None:
    torch.manual_seed(0)
    online = _conv_bn()
    target = MomentumTarget(online)
    buffers_before = {name: b.clone() for name, b in target.network.named_buffers()}
    online.train()
    for _ in range(3):
        online(torch.randn(4, 3, 6, 6))  # moves the online running statistics
    assert not torch.equal(online[1].running_mean, buffers_before["1.running_mean"])
    target.update(0.5)
    for name, buffer in target.network.named_buffers():
        assert torch.equal(buffer, buffers_before[name]), name


def test_buffers_are_copied_with_update_buffers() -> None:
    torch.manual_seed(0)
    online = _conv_bn()
    target = MomentumTarget(online, update_buffers=True)
    online.train()
    for _ in range(3):
        online(torch.randn(4, 3, 6, 6))
    target.update(0.5)
    online_buffers = dict(online.named_buffers())
    assert set(online_buffers) == {name for name, _ in target.network.named_buffers()}
    for name, buffer in target.network.named_buffers():
        assert torch.equal(buffer, online_buffers[name]), name
        assert buffer.data_ptr() != online_buffers[name].data_ptr()  # copied, not shared
    assert int(target.network[1].num_batches_tracked) == 3


def test_target_gets_no_gradient_and_leaves_online_gradients_alone() -> None:
    torch.manual_seed(0)
    online = _mlp()
    target = MomentumTarget(online)
    inputs = torch.randn(5, 6, requires_grad=True)

    out = target(inputs)
    assert not out.requires_grad
    assert out.grad_fn is None
    assert all(not p.requires_grad and p.grad is None for p in target.network.parameters())
    assert all(p.requires_grad for p in online.parameters())

    reference = copy.deepcopy(online)
    reference(inputs.detach()).square().sum().backward()

    (online(inputs).square().sum() + target(inputs).sum()).backward()
    for (name, param), (_, ref) in zip(online.named_parameters(), reference.named_parameters(), strict=True):
        torch.testing.assert_close(param.grad, ref.grad, msg=name)
    assert all(p.grad is None for p in target.network.parameters())


def test_target_is_a_deep_copy() -> None:
    torch.manual_seed(0)
    online = _conv_bn()
    target = MomentumTarget(online)
    assert target.online is online
    for (name, t), (_, o) in zip(target.network.named_parameters(), online.named_parameters(), strict=True):
        assert torch.equal(t, o), name
        assert t is not o and t.data_ptr() != o.data_ptr()
    before = _snapshot(target)
    _perturb(online)  # in place, on the online copy only
    assert all(torch.equal(before[name], tensor) for name, tensor in target.state_dict().items())
    target.update(0.5)
    assert not torch.equal(before["network.0.weight"], target.network[0].weight)


def test_online_network_is_not_in_the_state_dict() -> None:
    online = _conv_bn()
    target = MomentumTarget(online)
    keys = list(target.state_dict())
    assert keys and all(key.startswith("network.") for key in keys)
    assert [key.removeprefix("network.") for key in keys] == list(online.state_dict())
    assert all(module is not online for module in target.modules())
    assert not any(parameter is p for parameter in target.parameters() for p in online.parameters())

    parent = _Parent(online)
    parent_keys = list(parent.state_dict())
    assert sum(key.startswith("online.") for key in parent_keys) == len(online.state_dict())
    assert sum(key.startswith("target.network.") for key in parent_keys) == len(online.state_dict())
    assert len(parent_keys) == 2 * len(online.state_dict())


@pytest.mark.parametrize("update_buffers", [False, True])
def test_update_after_sync_batchnorm_conversion_of_the_parent(update_buffers: bool) -> None:
    torch.manual_seed(0)
    parent = _Parent(_conv_bn().double(), update_buffers=update_buffers)
    parent.target.update(0.9)  # pairs once before the conversion
    parent = nn.SyncBatchNorm.convert_sync_batchnorm(parent)
    assert isinstance(parent.online[1], nn.SyncBatchNorm)
    assert isinstance(parent.target.network[1], nn.SyncBatchNorm)
    assert parent.target.online is parent.online

    _perturb(parent.online)
    with torch.no_grad():
        parent.online[1].running_mean.add_(1.0)
    buffers_before = {name: b.clone() for name, b in parent.target.network.named_buffers()}
    before = {name: p.detach().clone() for name, p in parent.target.network.named_parameters()}
    parent.target.update(0.9)
    _assert_follows(parent.target, before, parent.online, 0.9)
    expected_buffers = dict(parent.online.named_buffers()) if update_buffers else buffers_before
    for name, buffer in parent.target.network.named_buffers():
        assert torch.equal(buffer, expected_buffers[name]), name


@pytest.mark.parametrize("swap_tensors", [False, True])
def test_update_after_moving_the_parent_to_float64(swap_tensors: bool) -> None:
    torch.manual_seed(0)
    parent = _Parent(_mlp())
    parent.target.update(0.9)
    previous = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(swap_tensors)
    try:
        parent.to(torch.float64)
    finally:
        torch.__future__.set_swap_module_params_on_conversion(previous)
    assert all(p.dtype == torch.float64 for p in parent.target.network.parameters())

    _perturb(parent.online)
    before = {name: p.detach().clone() for name, p in parent.target.network.named_parameters()}
    parent.target.update(0.75)
    _assert_follows(parent.target, before, parent.online, 0.75)


def test_update_follows_submodules_replaced_after_construction() -> None:
    torch.manual_seed(0)
    parent = _Parent(_mlp().double())
    parent.target.update(0.5)  # the pairing of the old parameters is cached now
    parent.online[3] = nn.Linear(16, 8, bias=False).double()
    parent.target.network[3] = copy.deepcopy(parent.online[3]).requires_grad_(False)
    _perturb(parent.online)
    before = {name: p.detach().clone() for name, p in parent.target.network.named_parameters()}
    parent.target.update(0.5)
    _assert_follows(parent.target, before, parent.online, 0.5)


def test_parameters_are_paired_by_name_not_by_order() -> None:
    torch.manual_seed(0)
    online = nn.Sequential()
    online.add_module("a", nn.Linear(3, 3).double())
    online.add_module("b", nn.Linear(3, 3).double())
    target = MomentumTarget(online)
    # Rebuild the target container with the same names in the opposite registration order.
    reordered = nn.Sequential()
    reordered.add_module("b", target.network.b)
    reordered.add_module("a", target.network.a)
    target.network = reordered
    _perturb(online)
    before = {name: p.detach().clone() for name, p in target.network.named_parameters()}
    target.update(0.5)
    _assert_follows(target, before, online, 0.5)


def test_mismatched_networks_raise_a_clear_error() -> None:
    online = _mlp()
    target = MomentumTarget(online)
    target.update(0.5)  # checked and cached with the matching layout first
    online[3] = nn.Linear(16, 4, bias=False)  # replaced on the online copy only, other shape
    with pytest.raises(
        RuntimeError, match=r"differ in shape: 3\.weight: target \(8, 16\) vs online \(4, 16\)"
    ):
        target.update(0.5)

    online = _mlp()
    target = MomentumTarget(online)
    online.add_module("extra", nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match=r"only in the online network: \['extra\.bias', 'extra\.weight'\]"):
        target.update(0.5)

    online = _conv_bn()
    target = MomentumTarget(online, update_buffers=True)
    online.register_buffer("queue", torch.zeros(3))
    with pytest.raises(RuntimeError, match=r"same buffers.*queue"):
        target.update(0.5)


@pytest.mark.parametrize("momentum", [-0.01, 1.0001, math.nan, math.inf])
def test_momentum_outside_the_unit_interval_is_refused(momentum: float) -> None:
    target = MomentumTarget(_linear())
    with pytest.raises(ValueError, match="momentum must be in"):
        target.update(momentum)


def test_momentum_must_be_a_host_number() -> None:
    target = MomentumTarget(_linear())
    with pytest.raises(TypeError, match="host float"):
        target.update(torch.tensor(0.5))  # type: ignore[arg-type]
    target.update(1)  # ints are fine
    with pytest.raises(TypeError, match="nn.Module"):
        MomentumTarget(torch.zeros(3))  # type: ignore[arg-type]


def test_deepcopy_and_pickle_keep_working() -> None:
    torch.manual_seed(0)
    parent = _Parent(_mlp().double())
    parent.target.update(0.5)
    clone = copy.deepcopy(parent)
    assert clone.target.online is clone.online
    restored = pickle.loads(pickle.dumps(parent))
    assert restored.target.online is restored.online
    for copied in (clone, restored):
        _perturb(copied.online)
        before = {name: p.detach().clone() for name, p in copied.target.network.named_parameters()}
        copied.target.update(0.5)
        _assert_follows(copied.target, before, copied.online, 0.5)


# --- scalar schedules --------------------------------------------------------------------------------


def test_cosine_schedule_byol_values() -> None:
    assert cosine_schedule(0.996, 1.0, 0, 1000) == 0.996
    assert cosine_schedule(0.996, 1.0, 500, 1000) == pytest.approx(0.998, abs=1e-12)
    assert cosine_schedule(0.996, 1.0, 1000, 1000) == 1.0
    assert cosine_schedule(0.996, 1.0, 1001, 1000) == 1.0
    assert cosine_schedule(0.996, 1.0, 10**9, 1000) == 1.0
    for k in (1, 137, 250, 999):  # BYOL's tau, as written in the paper
        byol = 1 - (1 - 0.996) * (math.cos(math.pi * k / 1000) + 1) / 2
        assert cosine_schedule(0.996, 1.0, k, 1000) == pytest.approx(byol, abs=1e-15)
    assert cosine_schedule(0.996, 1.0, 250, 1000) == pytest.approx(0.996 + 0.004 * (1 - math.sqrt(0.5)) / 2)


def test_cosine_schedule_is_monotone() -> None:
    rising = [cosine_schedule(0.996, 1.0, k, 1000) for k in range(1001)]
    assert all(a < b for a, b in zip(rising, rising[1:], strict=False))
    falling = [cosine_schedule(1.0, 0.1, k, 77) for k in range(80)]
    assert all(a >= b for a, b in zip(falling, falling[1:], strict=False))
    assert falling[0] == 1.0 and falling[77:] == [0.1, 0.1, 0.1]
    assert all(isinstance(value, float) for value in rising)


def test_linear_warmup_dino_values() -> None:
    assert linear_warmup(0.04, 0.07, 0, 30) == 0.04
    assert linear_warmup(0.04, 0.07, 15, 30) == pytest.approx(0.055, abs=1e-15)
    assert linear_warmup(0.04, 0.07, 10, 30) == pytest.approx(0.05, abs=1e-15)
    assert linear_warmup(0.04, 0.07, 30, 30) == 0.07
    assert linear_warmup(0.04, 0.07, 31, 30) == 0.07
    assert linear_warmup(0.04, 0.07, 1000, 30) == 0.07
    assert linear_warmup(0.04, 0.07, 0, 0) == 0.07  # no warmup
    values = [linear_warmup(0.04, 0.07, k, 30) for k in range(40)]
    assert all(a < b for a, b in zip(values[:31], values[1:31], strict=False))


def test_schedule_dataclasses() -> None:
    cosine = CosineSchedule(0.996, 1.0)
    warmup = WarmupThenConstant(0.04, 0.07)
    for k in (0, 3, 50, 100, 200):
        assert cosine(k, 100) == cosine_schedule(0.996, 1.0, k, 100)
        assert warmup(k, 30) == linear_warmup(0.04, 0.07, k, 30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cosine.start = 0.9  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        warmup.end = 0.1  # type: ignore[misc]
    assert CosineSchedule(0.996, 1.0) == cosine and hash(cosine) == hash(CosineSchedule(0.996, 1.0))
    assert [field.type for field in dataclasses.fields(CosineSchedule)] == ["float", "float"]
    with pytest.raises(ValueError, match="finite"):
        CosineSchedule(math.nan, 1.0)
    with pytest.raises(ValueError, match="finite"):
        WarmupThenConstant(0.04, math.inf)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: cosine_schedule(0.996, 1.0, 0, 0), ValueError, "total_steps must be >= 1"),
        (lambda: cosine_schedule(0.996, 1.0, -1, 10), ValueError, "step must be >= 0"),
        (lambda: cosine_schedule(0.996, 1.0, 1.5, 10), TypeError, "step must be a host int"),
        (lambda: cosine_schedule(0.996, 1.0, torch.tensor(1), 10), TypeError, "step must be a host int"),
        (lambda: cosine_schedule(0.996, 1.0, True, 10), TypeError, "step must be a host int"),
        (lambda: cosine_schedule(math.nan, 1.0, 0, 10), ValueError, "start must be finite"),
        (lambda: linear_warmup(0.04, 0.07, -1, 30), ValueError, "step must be >= 0"),
        (lambda: linear_warmup(0.04, 0.07, 0, -1), ValueError, "warmup_steps must be >= 0"),
        (lambda: linear_warmup(0.04, "0.07", 0, 30), TypeError, "end must be a host float"),
        (lambda: CosineSchedule(0.996, 1.0)(0, 0), ValueError, "total_steps must be >= 1"),
        (lambda: WarmupThenConstant(0.04, 0.07)(-2, 30), ValueError, "step must be >= 0"),
    ],
)
def test_schedule_argument_errors(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


# --- FrozenForSteps ----------------------------------------------------------------------------------

FROZEN_STEPS = 4


def _sgd(parameters):
    return torch.optim.SGD(parameters, lr=0.1, momentum=0.9, weight_decay=0.01)


def _adamw(parameters):
    return torch.optim.AdamW(parameters, lr=0.01, weight_decay=0.1)


def _train(model: nn.Module, optimizer, steps: int, frozen: FrozenForSteps | None, zero_instead=None):
    """Train ``steps`` steps; the list of parameter snapshots after each step (index 0: before training)."""
    generator = torch.Generator().manual_seed(1)
    snapshots = [_snapshot(model)]
    for step in range(steps):
        inputs = torch.randn(8, 4, generator=generator)
        targets = torch.randn(8, 3, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(inputs), targets).backward()
        if frozen is not None:
            frozen.cancel_gradients(step)
        if zero_instead is not None and step < FROZEN_STEPS:
            for parameter in zero_instead:
                parameter.grad.zero_()
        optimizer.step()
        snapshots.append(_snapshot(model))
    return snapshots


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("make_optimizer", [_sgd, _adamw], ids=["sgd_momentum_wd", "adamw"])
@pytest.mark.parametrize("form", ["module", "parameters"])
def test_frozen_part_does_not_move_for_n_steps_then_trains(make_optimizer, form: str) -> None:
    model = _model()
    frozen_part = model[2]
    frozen = FrozenForSteps(frozen_part if form == "module" else frozen_part.parameters(), FROZEN_STEPS)
    snapshots = _train(model, make_optimizer(model.parameters()), FROZEN_STEPS + 3, frozen)

    frozen_keys = ["2.weight", "2.bias"]
    rest_keys = ["0.weight", "0.bias"]
    for after in range(1, FROZEN_STEPS + 4):
        previous, current = snapshots[after - 1], snapshots[after]
        for key in rest_keys:  # the rest trains at every step
            assert not torch.equal(previous[key], current[key]), (after, key)
        for key in frozen_keys:
            if after <= FROZEN_STEPS:  # bit-exact: not a single ulp of weight decay or momentum
                assert torch.equal(snapshots[0][key], current[key]), (after, key)
            else:  # step N + 1 onwards: it trains
                assert not torch.equal(previous[key], current[key]), (after, key)


@pytest.mark.parametrize("make_optimizer", [_sgd, _adamw], ids=["sgd_momentum_wd", "adamw"])
def test_zero_gradients_would_not_be_enough(make_optimizer) -> None:
    """Why FrozenForSteps sets grad to None: with weight decay a zero gradient still moves the weights."""
    model = _model()
    snapshots = _train(
        model, make_optimizer(model.parameters()), 2, None, zero_instead=list(model[2].parameters())
    )
    assert not torch.equal(snapshots[0]["2.weight"], snapshots[1]["2.weight"])


def test_frozen_at_and_no_op_after_the_frozen_steps() -> None:
    layer = nn.Linear(2, 2)
    frozen = FrozenForSteps(layer, 3)
    assert [frozen.frozen_at(step) for step in range(6)] == [True, True, True, False, False, False]
    assert not any(FrozenForSteps(layer, 0).frozen_at(step) for step in range(3))

    layer(torch.ones(1, 2)).sum().backward()
    frozen.cancel_gradients(2)
    assert layer.weight.grad is None and layer.bias.grad is None
    layer(torch.ones(1, 2)).sum().backward()
    grad = layer.weight.grad.clone()
    frozen.cancel_gradients(3)
    assert torch.equal(layer.weight.grad, grad)
    assert layer.weight.requires_grad and layer.bias.requires_grad  # never toggled


def test_module_form_reads_parameters_lazily() -> None:
    model = _model()
    frozen = FrozenForSteps(model, 2)
    model(torch.ones(1, 4)).sum().backward()
    frozen.cancel_gradients(0)  # reads the parameters once before the replacement
    model[2] = nn.Linear(8, 3)  # replaced after construction
    model(torch.ones(1, 4)).sum().backward()
    frozen.cancel_gradients(0)
    assert all(parameter.grad is None for parameter in model.parameters())
    assert len(frozen.parameters) == 4


def test_frozen_for_steps_argument_errors() -> None:
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        FrozenForSteps(layer, -1)
    with pytest.raises(TypeError, match="steps must be a host int"):
        FrozenForSteps(layer, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nn.Parameter"):
        FrozenForSteps([torch.zeros(2)], 2)  # type: ignore[list-item]
    frozen = FrozenForSteps(layer.parameters(), 2)
    with pytest.raises(ValueError, match="step must be >= 0"):
        frozen.cancel_gradients(-1)
    with pytest.raises(TypeError, match="step must be a host int"):
        frozen.frozen_at(torch.tensor(0))  # type: ignore[arg-type]
