"""``contrastive list [KIND] [--json]``: the registered components and their params.

Each param is shown with its type, its default written as it would be in a recipe (TOML: ``true``,
``"text"``, ``[0.2, 1.0]``; not Python's ``True`` or ``(0.2, 1.0)``) and its description, the docstring
under the field. ``--json`` prints the same as one JSON document for tools: every kind, component and
param, a default as its JSON value (absent when the param is required; ``null`` when it is unset).

A third-party field without a docstring still works; it is shown as "(no description)" and the
registry's warning naming it goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import types
import typing
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..version import __version__
from .arguments import registry_from_args

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from ..registration.registry import Registration

#: The default cell of a param that has none, and of one whose default is None (the key left out).
REQUIRED = "(required)"
UNSET = "(unset)"
NO_DESCRIPTION = "(no description)"


def list_components(args: argparse.Namespace, console: Console) -> int:
    """The handler of ``contrastive list``: a table per kind, or ``--json``."""
    from ..registration.kinds import KINDS, kind_spec

    registry = registry_from_args(args)
    specs = [kind_spec(args.kind)] if args.kind else list(KINDS.values())
    if args.json:
        listing = {
            spec.name: [component_json(r) for r in registry.registrations(spec.name)] for spec in specs
        }
        console.file.write(json.dumps({"contrastive": __version__, "kinds": listing}, indent=2) + "\n")
    else:
        for spec in specs:
            console.print(_kind_table(spec.plural, registry.registrations(spec.name)))
    errors = Console(stderr=True, highlight=False)
    for warning in registry.warnings:
        errors.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    return 0


def _kind_table(title: str, registrations: list[Registration]) -> Table:
    table = Table(title=title, show_lines=True)
    for column in ("name", "plugin", "parameter", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for registration in registrations:
        component = registration.cls
        table.add_row(component.name, registration.plugin, "", "", "", Text(component.summary()))
        for name, field in params_of(registration):
            description = Text(_one_line(field.description)) if field.description else None
            cells = (Text(name), Text(describe_type(field.annotation)), Text(default_text(field)))
            table.add_row("", "", *cells, description or Text(NO_DESCRIPTION, style="yellow"))
    return table  # Text cells throughout: '[...]' in a type or default is not rich markup


def component_json(registration: Registration) -> dict[str, Any]:
    """One component for ``list --json``: name, plugin, summary and its params."""
    params = []
    for name, field in params_of(registration):
        param: dict[str, Any] = {"name": name, "type": describe_type(field.annotation)}
        param["required"] = field.is_required()
        if not field.is_required():
            param["default"] = _jsonable_default(field)
        param["description"] = _one_line(field.description) if field.description else None
        params.append(param)
    component = registration.cls
    return {
        "name": component.name,
        "plugin": registration.plugin,
        "origin": registration.info.origin,
        "summary": component.summary(),
        "params": params,
    }


def params_of(registration: Registration) -> list[tuple[str, FieldInfo]]:
    """The component's params fields in declaration order, less ``type`` (the component's own name)."""
    fields = registration.cls.Params.model_fields
    return [(name, field) for name, field in fields.items() if name != "type"]


def default_text(field: FieldInfo) -> str:
    """The field's default as a recipe would write it, or "(required)" / "(unset)"."""
    if field.is_required():
        return REQUIRED
    value = _jsonable_default(field)
    return UNSET if value is None else toml_value(value)


def _jsonable_default(field: FieldInfo) -> Any:
    from pydantic_core import to_jsonable_python

    # JSON-able first: tuples become lists and models dicts, as they are written in a recipe.
    return to_jsonable_python(field.get_default(call_default_factory=True))


def toml_value(value: Any) -> str:
    """A JSON-able value in TOML's inline syntax: true/false, "text", [1, 2], {key = value}, inf, nan."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_key(key)} = {toml_value(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, int | float):
        return repr(value)  # repr(float) is valid TOML, inf and -inf included ('1e-06', '0.5')
    raise TypeError(f"{type(value).__name__} has no TOML form: {value!r}")


def _toml_string(text: str) -> str:
    # JSON's escapes (\", \\, \n, \uXXXX for control characters) are TOML's too; DEL is left raw by JSON.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    bare = key and all(char.isascii() and (char.isalnum() or char in "-_") for char in key)
    return key if bare else _toml_string(key)


def _one_line(text: str) -> str:
    return " ".join(text.split())  # docstrings wrap; tables re-wrap


def describe_type(annotation: object) -> str:
    """A short readable type: Literal['a', 'b'] -> 'a' | 'b', Optional[int] -> int | None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is typing.Annotated:
        return describe_type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe_type(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(describe_type(arg) for arg in args)}]"
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))
