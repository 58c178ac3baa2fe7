"""Which dataset an evaluation stage uses: its own ``data`` table (transfer) or the recipe's ``[data]``.

The stage's ``data`` param is a plain table (``dict[str, Any]``), not the typed union of registered
dataset params that the recipe's ``[data]`` is: a stage's params model is a fixed class defined when its
plugin is imported, while that union depends on which plugins a registry loaded. The field is marked
:class:`~contrastive_core.ComponentTable`, so recipe validation checks the table already; it is checked
again here, with the same messages and the stage's key path (``stages[2].data.root: ...``), for stages
built from Python without a validated recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contrastive_core import Dataset, StageContext, build
from contrastive_core.errors import ContrastiveError, Problem, RecipeError, UnknownComponentError


class NoDatasetError(ContrastiveError):
    """An evaluation stage has no dataset: neither its own ``data`` table nor the recipe's ``[data]``."""


def evaluation_dataset(table: Mapping[str, Any] | None, context: StageContext) -> Dataset:
    """Build the stage's ``data`` table if given, else the recipe's ``[data]``."""
    where = f"stages[{context.index}]"
    if table is None:
        if context.recipe.data is None:
            raise NoDatasetError(
                f"{where} ({context.key}): no dataset to evaluate on: the recipe has no [data] section and the "
                f"stage sets no `data` table. Add [data] to the recipe, or `data = {{ type = ..., ... }}` to "
                "the stage."
            )
        return build("dataset", context.recipe.data, registry=context.registry)
    try:
        return build("dataset", dict(table), registry=context.registry)
    except UnknownComponentError as error:
        raise RecipeError("recipe", [Problem(f"{where}.data.type", str(error))]) from None
    except RecipeError as error:
        raise RecipeError(
            "recipe",
            [Problem(f"{where}.data" + (f".{p.path}" if p.path else ""), p.message) for p in error.problems],
        ) from None
