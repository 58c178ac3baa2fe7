"""``contrastive lint``: a recipe compared with its method's published settings.

The method class's ``published_settings`` (:class:`~contrastive_core.components.PublishedSetting`) hold
the paper's values; :func:`lint_recipe` resolves each one that applies to the recipe's dataset against
the validated recipe (defaults included, so a value the recipe leaves out counts as the component's
default) and reports every value that differs as a :class:`Departure`.

A recipe documents a deliberate departure with a comment ``# lint: allow NAME reason`` anywhere in its
file, NAME being the setting's field (``temperature``), its path (``loss.temperature``,
``augmentations[gaussian_blur]``) or the departing path itself (``stages[1].batch_size``); the
departure is then reported as allowed, with the reason, and does not fail the lint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..components.published_setting import PublishedSetting
from ..registration.registry import Registry


class _Absent:
    """The recipe has no such augmentation op (shown as "absent")."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()

_LIST_PATH = re.compile(r"^(augmentations|stages)\[(\w+)\](?:\.(\w+))?$")
_ALLOW = re.compile(r"#\s*lint:\s*allow\s+([^\s:]+)[ \t]*(.*)$")


@dataclass(frozen=True)
class Departure:
    """A recipe value that differs from the published one."""

    path: str
    """Where in this recipe, e.g. ``loss.temperature`` or ``stages[0].batch_size``."""
    recipe_value: Any
    """The recipe's value (its component's default when the recipe leaves it out), or ABSENT."""
    setting: PublishedSetting
    allowed: str | None = None
    """The reason of the recipe's ``# lint: allow`` comment ("" when it gives none), or None."""

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "setting": self.setting.path,
            "recipe": _jsonable(self.recipe_value),
            "published": _jsonable(self.setting.value),
            "source": self.setting.source,
            "effect": self.setting.effect,
            "allowed": self.allowed is not None,
            "reason": self.allowed,
        }


@dataclass(frozen=True)
class LintResult:
    """What :func:`lint_recipe` found: the method, the dataset type, how many values it compared, and
    the departures (allowed ones included)."""

    method: str | None
    dataset: str | None
    compared: int
    departures: list[Departure]

    @property
    def failing(self) -> list[Departure]:
        """The departures without an allowance: they make ``contrastive lint`` exit 1."""
        return [departure for departure in self.departures if departure.allowed is None]


def lint_allowances(text: str) -> dict[str, str]:
    """The ``# lint: allow NAME reason`` comments of a recipe's text: NAME -> reason ("" if none)."""
    allowed = {}
    for line in text.splitlines():
        match = _ALLOW.search(line)
        if match:
            allowed[match.group(1)] = match.group(2).strip().lstrip(":-(").rstrip(")").strip()
    return allowed


def lint_recipe(recipe: BaseModel, registry: Registry, text: str = "") -> LintResult:
    """Compare the validated ``recipe`` (whose file's ``text`` may carry allowances) with its method's
    published settings."""
    method_params = getattr(recipe, "method", None)
    dataset = getattr(getattr(recipe, "data", None), "type", None)
    if method_params is None:
        return LintResult(None, dataset, 0, [])
    settings = registry.get("method", method_params.type).published_settings
    allowances = lint_allowances(text)
    compared = 0
    departures = []
    for setting in settings:
        if not setting.applies_to(dataset):
            continue
        for path, value in _recipe_values(recipe, setting.path, setting.value):
            compared += 1
            if _same(value, setting.value):
                continue
            departures.append(Departure(path, value, setting, _allowance(allowances, setting.path, path)))
    return LintResult(method_params.type, dataset, compared, departures)


def _allowance(allowances: dict[str, str], setting_path: str, path: str) -> str | None:
    match = _LIST_PATH.match(setting_path)
    names = [path, setting_path, setting_path.rsplit(".", 1)[-1]]
    if match and match.group(3) is None:  # a presence setting: the op's name allows it too
        names.append(match.group(2))
    for name in names:
        if name in allowances:
            return allowances[name]
    return None


def _recipe_values(recipe: BaseModel, path: str, published: Any) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of every place ``path`` names in ``recipe``; none where it does not apply."""
    match = _LIST_PATH.match(path)
    if match is None:
        *sections, field = path.split(".")
        owner: Any = recipe
        for section in sections:
            owner = getattr(owner, section, None)
            if owner is None:
                return
        if isinstance(owner, BaseModel) and field in type(owner).model_fields:
            yield path, getattr(owner, field)
        return
    kind, type_name, field = match.groups()
    if kind == "stages":
        for index, stage in enumerate(recipe.stages):  # type: ignore[attr-defined]
            if stage.type == type_name and field in type(stage).model_fields:
                yield f"stages[{index}].{field}", getattr(stage, field)
        return
    for prefix, ops in _augmentation_lists(recipe):
        positions = [index for index, op in enumerate(ops) if op.type == type_name]
        if field is None:  # whether the list has the op
            yield f"{prefix}[{type_name}]", bool(positions)
        elif not positions:
            if published is not ABSENT:
                yield f"{prefix}[{type_name}].{field}", ABSENT
        else:
            for index in positions:
                if field in type(ops[index]).model_fields:
                    yield f"{prefix}[{index}].{field}", getattr(ops[index], field)


def _augmentation_lists(recipe: BaseModel) -> Iterator[tuple[str, Sequence[Any]]]:
    """The recipe's augmentation list, or each view group's."""
    views = getattr(recipe, "views", None)
    if views:
        for index, group in enumerate(views):
            yield f"views[{index}].augmentations", group.augmentations or []
    else:
        yield "augmentations", getattr(recipe, "augmentations", None) or []


def _same(value: Any, published: Any) -> bool:
    if value is ABSENT or published is ABSENT:
        return value is published
    if isinstance(value, bool) or isinstance(published, bool):  # True is no 1 here
        return type(value) is type(published) and value == published
    if isinstance(published, (tuple, list)):
        return (
            isinstance(value, (tuple, list))
            and len(value) == len(published)
            and all(_same(a, b) for a, b in zip(value, published, strict=True))
        )
    if isinstance(published, (int, float)) and isinstance(value, (int, float)):
        return math.isclose(value, published, rel_tol=1e-6, abs_tol=1e-12)
    return value == published


def _jsonable(value: Any) -> Any:
    if value is ABSENT:
        return None
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return value


def format_value(value: Any) -> str:
    """A value as the recipe's TOML would write it (absent for a missing op)."""
    if value is ABSENT:
        return "absent"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
