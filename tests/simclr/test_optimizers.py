"""The lars / sgd / adamw components: exclusion rules, learning-rate scaling, params validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import contrastive_plugins.simclr.plugin as simclr_plugin
from contrastive_core import RecipeError, Registry, build, get_plugin_manager
from contrastive_plugins.simclr.optim import OPTIMIZERS, SCHEDULERS
from contrastive_plugins.simclr.optim.lars import LARS
from contrastive_plugins.simclr.optim.lr_scaling import scaled_learning_rate

OPTIMIZER_NAMES = ("lars", "sgd", "adamw")


class NormZoo(nn.Module):
    """Every kind of normalisation layer the rule knows, plus look-alikes it must leave alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.instance_norm = nn.InstanceNorm2d(4, affine=True)
        self.group_norm = nn.GroupNorm(2, 4)
        self.linear = nn.Linear(4, 4)
        self.layer_norm = nn.LayerNorm(4)
        self.bn1d = nn.BatchNorm1d(4)
        self.scale_bias = nn.Parameter(torch.ones(4))  # named like a bias but is not "bias"
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.tied = nn.Linear(4, 4, bias=False)
        self.tied.weight = self.linear.weight  # a shared parameter is optimised once


# By name, independently of the module-type rule under test.
EXCLUDED = {
    "bn.weight", "bn.bias", "instance_norm.weight", "instance_norm.bias", "group_norm.weight", "group_norm.bias",
    "linear.bias", "layer_norm.weight", "layer_norm.bias", "bn1d.weight", "bn1d.bias", "frozen.bias",
}  # fmt: skip
# A frozen part is optimised too (it gets no gradient while frozen, and trains once unfrozen).
REGULAR = {"conv.weight", "linear.weight", "scale_bias", "frozen.weight"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    manager = get_plugin_manager(autoload=False)
    manager.register(simclr_plugin, name="simclr")
    return Registry.from_plugin_manager(manager, strict=False)


def names_of(group: dict, model: nn.Module) -> set[str]:
    by_id = {id(p): name for name, p in model.named_parameters()}
    return {by_id[id(p)] for p in group["params"]}


def groups_by_name(optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    return {group["name"]: group for group in optimizer.param_groups}


def test_the_package_lists() -> None:
    assert [cls.name for cls in OPTIMIZERS] == ["lars", "sgd", "adamw"]
    assert [cls.name for cls in SCHEDULERS] == ["warmup_cosine"]


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_bn_and_bias_rule_groups_parameters(registry: Registry, name: str) -> None:
    model = NormZoo()
    optimizer = build("optimizer", {"type": name, "weight_decay": 0.05}, registry=registry, model=model)
    groups = groups_by_name(optimizer)

    assert names_of(groups["regular"], model) == REGULAR
    assert names_of(groups["excluded"], model) == EXCLUDED
    assert groups["regular"]["weight_decay"] == 0.05
    assert groups["excluded"]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(REGULAR) + len(EXCLUDED)
    if name == "lars":
        assert isinstance(optimizer, LARS)
        assert groups["regular"]["lars_adaptation"] is True
        assert groups["excluded"]["lars_adaptation"] is False


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_none_rule_treats_every_parameter_alike(registry: Registry, name: str) -> None:
    model = NormZoo()
    optimizer = build(
        "optimizer", {"type": name, "exclude": "none", "weight_decay": 0.05}, registry=registry, model=model
    )
    assert len(optimizer.param_groups) == 1
    (group,) = optimizer.param_groups
    assert names_of(group, model) == REGULAR | EXCLUDED
    assert group["weight_decay"] == 0.05


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_zero_gradient_step_decays_only_regular_parameters(registry: Registry, name: str) -> None:
    """With all gradients 0 the whole step is weight decay (w *= 1 - lr * wd for all three optimizers,
    LARS's trust ratio falling back to 1): excluded parameters must not move at all."""
    model = NormZoo()
    with torch.no_grad():
        for param in model.parameters():
            param.uniform_(0.5, 1.5)  # BN scales/biases start at 1/0; make every tensor non-trivial
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = {"type": name, "lr": 0.1, "lr_scaling": "none", "weight_decay": 0.05}
    optimizer = build("optimizer", params, registry=registry, model=model)
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()

    for n, p in model.named_parameters():
        if n in EXCLUDED:
            assert torch.equal(p, before[n]), n
        elif n in REGULAR:
            torch.testing.assert_close(p, before[n] * (1 - 0.1 * 0.05), msg=n)


@pytest.mark.parametrize(
    ("rule", "base", "batch_size", "expected"),
    [
        ("linear", 0.3, 4096, 4.8),  # SimCLR's default: 0.3 x 4096 / 256
        ("linear", 0.3, 256, 0.3),
        ("linear", 0.3, 128, 0.15),
        ("sqrt", 0.075, 4096, 4.8),  # SimCLR's square-root alternative: 0.075 x sqrt(4096)
        ("sqrt", 0.075, 100, 0.75),
        ("none", 0.3, 4096, 0.3),
    ],
)
@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_learning_rate_scaling(
    registry: Registry, name: str, rule: str, base: float, batch_size: int, expected: float
) -> None:
    params = {"type": name, "lr": base, "lr_scaling": rule}
    optimizer = build("optimizer", params, registry=registry, model=NormZoo(), batch_size=batch_size)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(expected, rel=1e-12)
        assert group["initial_lr"] == pytest.approx(expected, rel=1e-12)
    assert optimizer.defaults["lr"] == pytest.approx(expected, rel=1e-12)


def test_default_batch_size_and_scaling_rules(registry: Registry) -> None:
    assert (
        build("optimizer", {"type": "lars"}, registry=registry, model=NormZoo()).param_groups[0]["lr"] == 0.3
    )
    adamw = build("optimizer", {"type": "adamw"}, registry=registry, model=NormZoo(), batch_size=4096)
    assert adamw.param_groups[0]["lr"] == 1e-3  # AdamW's default rule is "none"
    sgd = build("optimizer", {"type": "sgd"}, registry=registry, model=NormZoo(), batch_size=512)
    assert sgd.param_groups[0]["lr"] == pytest.approx(0.6)


def test_scaled_learning_rate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        scaled_learning_rate(0.3, 0, "linear")
    with pytest.raises(ValueError, match="unknown"):
        scaled_learning_rate(0.3, 256, "cubic")  # type: ignore[arg-type]
    assert scaled_learning_rate(1.0, 2, "sqrt") == pytest.approx(math.sqrt(2))


def test_component_hyperparameters_reach_the_torch_optimizer(registry: Registry) -> None:
    lars = build(
        "optimizer", {"type": "lars", "momentum": 0.8, "eta": 0.02}, registry=registry, model=NormZoo()
    )
    assert (lars.defaults["momentum"], lars.defaults["eta"], lars.defaults["weight_decay"]) == (
        0.8,
        0.02,
        1e-6,
    )
    sgd = build("optimizer", {"type": "sgd", "nesterov": True}, registry=registry, model=NormZoo())
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["nesterov"] is True and sgd.defaults["momentum"] == 0.9
    adamw = build(
        "optimizer", {"type": "adamw", "betas": [0.8, 0.99], "eps": 1e-6}, registry=registry, model=NormZoo()
    )
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["betas"] == (0.8, 0.99) and adamw.defaults["eps"] == 1e-6


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"type": "lars", "lr": 0.0}, "lr"),
        ({"type": "lars", "momentum": 1.0}, "momentum"),
        ({"type": "lars", "eta": -1.0}, "eta"),
        ({"type": "lars", "exclude": "bn"}, "exclude"),
        ({"type": "sgd", "lr_scaling": "quadratic"}, "lr_scaling"),
        ({"type": "sgd", "momentum": 0.0, "nesterov": True}, "nesterov"),
        ({"type": "adamw", "betas": [0.9, 1.0]}, "betas"),
        ({"type": "adamw", "weight_decay": -0.1}, "weight_decay"),
    ],
)
def test_bad_params_are_recipe_errors(registry: Registry, params: dict, key: str) -> None:
    with pytest.raises(RecipeError, match=key):
        build("optimizer", params, registry=registry, model=NormZoo())


def test_a_model_without_trainable_parameters_is_an_error(registry: Registry) -> None:
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build("optimizer", {"type": "sgd"}, registry=registry, model=frozen)


def test_a_part_frozen_at_build_time_trains_once_unfrozen(registry: Registry) -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    model[0].requires_grad_(False)
    optimizer = build("optimizer", {"type": "sgd", "lr": 0.1}, registry=registry, model=model, batch_size=256)
    frozen = model[0].weight.detach().clone()
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    assert torch.equal(model[0].weight, frozen)  # no gradient while frozen: not moved
    model[0].requires_grad_(True)
    optimizer.zero_grad()
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    assert not torch.equal(model[0].weight, frozen)


def test_lars_trains_the_excluded_group_at_its_own_rate(registry: Registry) -> None:
    """Barlow Twins: 0.2 for the weights, 0.0048 for biases and BN, both scaled by N / 256."""
    params = {"type": "lars", "lr": 0.2, "excluded_lr": 0.0048}
    optimizer = build("optimizer", params, registry=registry, model=NormZoo(), batch_size=2048)
    rates = {group["name"]: (group["lr"], group["initial_lr"]) for group in optimizer.param_groups}
    assert rates["regular"] == pytest.approx((1.6, 1.6), rel=1e-12)
    assert rates["excluded"] == pytest.approx((0.0384, 0.0384), rel=1e-12)
    default = build(
        "optimizer", {"type": "lars", "lr": 0.2}, registry=registry, model=NormZoo(), batch_size=2048
    )
    assert [group["lr"] for group in default.param_groups] == pytest.approx([1.6, 1.6])
