"""Which parameters are exempt from weight decay (and, for LARS, from layer adaptation), as param groups.

SimCLR (Chen et al., 2020, Appendix B.1) follows the large-batch practice of You et al. (2017) and Goyal et
al. (2017): BatchNorm parameters and biases get neither weight decay nor the LARS trust ratio. Their
scale is set by normalisation rather than by their norm, and decaying a BN scale towards 0 switches its
channel off. Rules (the optimizer components' ``exclude`` param):

* ``"bn_and_bias"``: exclude every parameter of a normalisation module (any
  ``nn.modules.batchnorm._NormBase``, i.e. BatchNorm/SyncBatchNorm/InstanceNorm, plus ``GroupNorm`` and
  ``LayerNorm``) and every parameter whose own name is ``bias``, whatever its module.
* ``"none"``: every parameter is treated alike.

Detection is by module type, not by name pattern, so it does not depend on how a model names its layers.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

ExclusionRule = Literal["bn_and_bias", "none"]

NORMALIZATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
)


def is_excluded(module: nn.Module, param_name: str, rule: ExclusionRule) -> bool:
    """Whether the parameter ``param_name`` owned directly by ``module`` is exempt under ``rule``."""
    if rule == "none":
        return False
    return isinstance(module, NORMALIZATION_MODULES) or param_name == "bias"


def split_parameters(model: nn.Module, rule: ExclusionRule) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The trainable parameters of ``model`` as (regular, excluded), each in ``model.parameters()`` order.

    A parameter shared by several modules is listed once; it is excluded if any of its owners excludes it.
    Parameters with ``requires_grad=False`` are listed too: they receive no gradient, so the optimizers
    skip them, and a part frozen by toggling ``requires_grad`` trains again once it is switched back on
    (leaving them out at build time would freeze them for good). What must never be optimised, such as
    a method's momentum targets, is left out of ``model`` itself (``Method.trainable``).
    """
    excluded_ids: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if is_excluded(module, name, rule):
                excluded_ids.add(id(param))
    trainable = list(model.parameters())
    regular = [p for p in trainable if id(p) not in excluded_ids]
    excluded = [p for p in trainable if id(p) in excluded_ids]
    return regular, excluded


def parameter_groups(
    model: nn.Module,
    *,
    rule: ExclusionRule,
    lr: float,
    weight_decay: float,
    excluded_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Param-group dicts for a ``torch.optim.Optimizer``: ``"regular"`` and ``"excluded"`` (if non-empty).

    Every group gets ``lr`` twice: as ``"lr"`` and as ``"initial_lr"``, the base that
    ``torch.optim.lr_scheduler`` schedulers multiply (also required to resume one with
    ``last_epoch >= 0``). The excluded group gets ``weight_decay=0`` plus ``excluded_options`` (LARS adds
    ``lars_adaptation=False``). Each group carries a ``"name"`` for logs and checkpoints.
    """
    regular, excluded = split_parameters(model, rule)
    if not any(p.requires_grad for p in [*regular, *excluded]):
        raise ValueError(f"{type(model).__name__} has no trainable parameters to optimise")
    groups: list[dict[str, Any]] = []
    if regular:
        groups.append(
            {"name": "regular", "params": regular, "lr": lr, "initial_lr": lr, "weight_decay": weight_decay}
        )
    if excluded:
        groups.append(
            {
                "name": "excluded",
                "params": excluded,
                "lr": lr,
                "initial_lr": lr,
                "weight_decay": 0.0,
                **(excluded_options or {}),
            }
        )
    return groups
