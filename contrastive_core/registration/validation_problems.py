"""Pydantic's validation errors as :class:`~contrastive_core.Problem` objects: dotted paths, suggestions.

Shared by :func:`~contrastive_core.build` (one component's params) and recipe validation (a whole
recipe), so both report a wrong key or value with the same message.
"""

from __future__ import annotations

import json
import math
import numbers
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, ValidationError

from ..errors import Problem, closest


def problems_from_validation_error(
    error: ValidationError,
    model: type[BaseModel],
    data: Mapping[str, Any] | None = None,
    component_tables: Mapping[tuple[Any, ...], Any] | None = None,
) -> list[Problem]:
    """Turn pydantic's errors into problems with dotted paths (union tags removed) and suggestions.

    ``data``: the validated input, along which the model is walked to list the keys a table allows.
    ``component_tables``: the tables of ``data`` validated as a union discriminated by ``type``, by
    their path; pydantic puts the tag into error locations (``('loss', 'nt_xent', 'x')``), and it is
    dropped from the problems' paths.
    """
    problems = []
    for item in error.errors(include_url=False):
        path = _strip_union_tags(tuple(item["loc"]), component_tables or {})
        where = format_path(path)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, path[:-1], data)
            key = str(path[-1])
            message = f"unknown key {key!r}"
            suggestion = closest(key, allowed)
            message += f"; did you mean {suggestion!r}?" if suggestion else "."
            if allowed:
                message += f" Allowed keys: {', '.join(allowed)}"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = item["msg"]
            value = item.get("input")
            if not isinstance(value, Mapping | list):
                message += f" (got {show_value(value)})"
        problems.append(Problem(where, message))
    return problems


def coerced_value_problems(raw: Any, validated: Any, where: str = "") -> list[Problem]:
    """Values that validated only because pydantic's lax mode converted them to another kind.

    Pydantic turns ``"32"`` into 32 for an ``int`` field, ``32.0`` into 32, ``"true"`` or 1 into True: a
    recipe saying ``batch_size = "32"`` would silently run. Recipes are strict instead: this walks the
    input (``raw``) and what it validated to side by side (models, tables and arrays) and reports every
    number or boolean that was not written as one, with its dotted path under ``where`` and the literal
    to write. Ints for float fields stay accepted (``lr = 1`` means 1.0), as do arrays for tuples.
    """
    problems: list[Problem] = []
    if isinstance(validated, BaseModel) and isinstance(raw, Mapping):
        fields = type(validated).model_fields
        for key, value in raw.items():
            if key in fields:
                problems += coerced_value_problems(value, getattr(validated, key), _join(where, key))
    elif isinstance(validated, Mapping) and isinstance(raw, Mapping):
        for key, value in raw.items():
            if key in validated:
                problems += coerced_value_problems(value, validated[key], _join(where, key))
    elif isinstance(validated, list | tuple) and isinstance(raw, list | tuple) and len(raw) == len(validated):
        for index, (item, checked) in enumerate(zip(raw, validated, strict=True)):
            problems += coerced_value_problems(item, checked, f"{where}[{index}]")
    else:
        message = _kind_change(raw, validated)
        if message:
            problems.append(Problem(where, message))
    return problems


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _kind_change(raw: Any, validated: Any) -> str | None:
    """Why ``raw`` should not have become ``validated`` (None when it is the same kind of value)."""
    if isinstance(validated, bool):
        if isinstance(raw, bool):
            return None
        wanted, literal = "true or false", "true" if validated else "false"
    elif isinstance(validated, int):
        if isinstance(raw, numbers.Integral) and not isinstance(raw, bool):
            return None
        wanted, literal = "an integer", str(validated)
    elif isinstance(validated, float):
        if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
            return None
        wanted, literal = "a number", _toml_float(validated)
    else:
        return None
    if isinstance(raw, str):
        return f"expected {wanted}, got the string {json.dumps(raw)}; write {literal} without quotes"
    return f"expected {wanted}, got {_toml_literal(raw)}; write {literal}"


def _toml_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _toml_literal(value: Any) -> str:
    """``value`` as a TOML file writes it (messages quote what the user wrote)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _toml_float(value)
    return show_value(value)


def _strip_union_tags(loc: tuple[Any, ...], tables: Mapping[tuple[Any, ...], Any]) -> tuple[Any, ...]:
    """Drop the discriminator tags pydantic puts into error locations: ('loss', 'nt_xent', 'x') -> ('loss', 'x')."""
    cleaned: list[Any] = []
    for part in loc:
        value = tables.get(tuple(cleaned))
        if isinstance(value, Mapping) and part == value.get("type") and len(cleaned) > 0:
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _allowed_keys(model: type[BaseModel], path: tuple[Any, ...], data: Mapping[str, Any] | None) -> list[str]:
    """The keys the table at ``path`` may have, found by walking the model along the data."""
    current: Any = model
    node: Any = data
    for part in path:
        if isinstance(current, _ListOf):
            in_range = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            node = node[part] if in_range else None
            current = _model_for(current.item, node)
            continue
        if not _is_model(current) or str(part) not in current.model_fields:
            return []
        node = node.get(part) if isinstance(node, Mapping) else None
        current = _model_for(current.model_fields[str(part)].annotation, node)
    return list(current.model_fields) if _is_model(current) else []


class _ListOf:
    """Stands for a list-valued field while walking a path: the next part is an index."""

    def __init__(self, item: Any) -> None:
        self.item = item


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_for(annotation: Any, node: Any) -> Any:
    """What an annotation holds for this data node: a model class (unions resolved by ``type``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _model_for(args[0], node)
    if origin is list:
        return _ListOf(args[0])
    if origin in (Union, types.UnionType):
        members = [_model_for(arg, node) for arg in args if arg is not type(None)]
        if len(members) == 1:
            return members[0]
        wanted = node.get("type") if isinstance(node, Mapping) else None
        for member in members:
            tag = member.model_fields.get("type") if _is_model(member) else None
            if tag is not None and typing.get_args(tag.annotation) == (wanted,):
                return member
        return None
    return annotation


def format_path(path: Sequence[Any]) -> str:
    """('stages', 0, 'epochs') -> 'stages[0].epochs'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def show_value(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (for messages quoting a wrong value)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
