"""The public way to make any component from a params dict, for the engine, notebooks and tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..components.component import ComponentParams
from ..errors import Problem, RecipeError
from .kinds import kind_spec
from .registry import Registry, default_registry
from .validation_problems import coerced_value_problems, problems_from_validation_error


def build(
    kind: str,
    params: Mapping[str, Any] | ComponentParams,
    *,
    registry: Registry | None = None,
    **context: Any,
) -> Any:
    """Build the component of ``kind`` that ``params["type"]`` names, from its validated params.

    >>> loss = build("loss", {"type": "nt_xent", "temperature": 0.5})

    ``context`` carries what the kind needs at run time (``in_dim`` for a head, ``model`` for an
    optimizer, ``optimizer`` and ``total_steps`` for a scheduler). Invalid params raise
    :class:`RecipeError` with the same messages as recipe validation.
    """
    spec = kind_spec(kind)
    registry = registry or default_registry()
    if isinstance(params, ComponentParams):
        name = getattr(params, "type", None)
        component = registry.get(spec.name, name)
        validated = params
    else:
        if "type" not in params:
            raise RecipeError(
                spec.name, [Problem("type", f"missing; registered: {', '.join(registry.names(spec.name))}")]
            )
        component = registry.get(spec.name, params["type"])
        try:
            validated = component.Params.model_validate(dict(params))
        except ValidationError as error:
            raise RecipeError(spec.name, problems_from_validation_error(error, component.Params)) from None
        coerced = coerced_value_problems(params, validated)  # "32" for an int: strict, as recipes are
        if coerced:
            raise RecipeError(spec.name, coerced)
    return component.from_params(validated, **context)
