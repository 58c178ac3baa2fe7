"""A params field that holds another component's table, checked when the recipe is validated.

An evaluation stage may evaluate on a dataset of its own (``data = { type = "cifar10", root = ... }``).
Its params model is a fixed class, defined when its plugin is imported, so the field cannot be typed
with the union of the dataset params that a registry loads; it is a plain table. Marking the field::

    data: Annotated[dict[str, Any] | None, ComponentTable("dataset")] = None

makes recipe validation check the table against the registry's components of that kind, with the same
messages as a top-level section and the field's dotted path (``stages[2].data.root: ...``), so a
misspelled key stops ``contrastive validate`` and ``contrastive run`` before any stage has run, not
hours later when the stage starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import Problem, UnknownComponentError
from ..registration.registry import Registry
from ..registration.validation_problems import coerced_value_problems, problems_from_validation_error


@dataclass(frozen=True)
class ComponentTable:
    """Field metadata: the field holds a table (or None) for a component of ``kind``."""

    kind: str


def component_table_problems(model: BaseModel, registry: Registry, path: str) -> list[Problem]:
    """Problems of every :class:`ComponentTable` field in ``model`` and the models nested in it; ``path``
    is the dotted path of ``model`` in the recipe (e.g. ``stages[2]``)."""
    problems: list[Problem] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name, None)
        where = f"{path}.{name}" if path else name
        marker = next((item for item in field.metadata if isinstance(item, ComponentTable)), None)
        if marker is not None and value is not None:
            problems += _table_problems(marker.kind, value, registry, where)
        elif isinstance(value, BaseModel):
            problems += component_table_problems(value, registry, where)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    problems += component_table_problems(item, registry, f"{where}[{index}]")
    return problems


def _table_problems(kind: str, table: Any, registry: Registry, where: str) -> list[Problem]:
    if not isinstance(table, Mapping):
        return [Problem(where, f"expected a table with a 'type' key, got {table!r}")]
    names = registry.names(kind)
    if "type" not in table:
        return [Problem(f"{where}.type", f"missing; registered {kind} types: {', '.join(names) or '(none)'}")]
    if table["type"] not in names:
        return [Problem(f"{where}.type", str(UnknownComponentError(kind, table["type"], names)))]
    try:
        validated = registry.get(kind, table["type"]).Params.model_validate(dict(table))
    except ValidationError as error:
        params = registry.get(kind, table["type"]).Params
        return [
            Problem(f"{where}.{problem.path}" if problem.path else where, problem.message)
            for problem in problems_from_validation_error(error, params)
        ]
    return coerced_value_problems(table, validated, where)
