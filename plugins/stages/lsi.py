"""The seed's Linear Separability Index: LSI = Acc_linear / Acc_supervised (top-1 accuracies).

It says how much of the accuracy of the same architecture trained with labels a linear classifier on
the frozen self-supervised features reaches: 1.0 means "as good as supervised training". A recipe with a
``linear_eval`` and a ``supervised`` stage on the same dataset and test split gets ``lsi`` in the metrics
of whichever of the two runs later (it reads the earlier one's top-1 from ``context.results``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from contrastive_core import StageContext
from contrastive_core.recipes import stage_keys

#: What a stage contributes to the index: the numerator (linear) or the denominator (supervised).
LsiRole = Literal["linear", "supervised"]
_PARTNER: dict[str, LsiRole] = {"linear": "supervised", "supervised": "linear"}


def linear_separability_index(linear_top1: float, supervised_top1: float) -> float:
    """Acc_linear / Acc_supervised; raises ValueError when the supervised accuracy is 0."""
    if supervised_top1 <= 0:
        raise ValueError("the supervised top-1 accuracy is 0; the linear separability index is undefined")
    return linear_top1 / supervised_top1


def lsi_metrics(
    context: StageContext, role: LsiRole, params: Any, top1: float, warn: Callable[[str], None]
) -> dict[str, float]:
    """``{"lsi": ...}`` when an earlier stage plays the partner role on the same task, else ``{}``.

    The nearest earlier partner counts. "The same task" means the same ``data`` table (None: the
    recipe's ``[data]``) and the same ``test_split``; a partner on another task is reported and skipped.
    """
    keys = stage_keys(context.recipe)
    for index in range(context.index - 1, -1, -1):
        other = context.recipe.stages[index]
        if getattr(context.registry.get("stage", other.type), "lsi_role", None) != _PARTNER[role]:
            continue
        key = keys[index]
        if (getattr(other, "data", None), getattr(other, "test_split", None)) != (
            params.data,
            params.test_split,
        ):
            warn(f"{context.key}: no LSI with stage {key!r}: it evaluates another dataset or split")
            continue
        partner_top1 = context.results.get(key, {}).get("top1")
        if partner_top1 is None:
            continue
        linear, supervised = (top1, partner_top1) if role == "linear" else (partner_top1, top1)
        if supervised <= 0:
            warn(f"{context.key}: no LSI: the supervised top-1 accuracy is 0")
            return {}
        return {"lsi": linear_separability_index(linear, supervised)}
    return {}
