"""A recipe's view groups, resolved against its method: which augmentation list makes each view.

A method declares the groups it trains on (:attr:`contrastive_core.Method.views`, e.g. SimCLR's
``global x 2``). A recipe gives them augmentations in one of two forms:

* ``[[augmentations]]``: one list for every view of every group (all of SimCLR's views are alike);
* ``[[views]]``: one table per group with its own ``augmentations`` list, optionally a ``count`` (for
  groups whose size the method leaves open, such as DINO's local crops; a group the method marks
  optional may be left out) and ``per_view`` changes of the
  list's ops, one table per view keyed by op type (BYOL blurs view 1 always and view 2 with p 0.1)::

      [[views]]
      name = "global"
      per_view = [{ gaussian_blur = { p = 1.0 }, solarize = { p = 0.0 } },
                  { gaussian_blur = { p = 0.1 }, solarize = { p = 0.2 } }]
      [[views.augmentations]]
      type = "random_resized_crop"
      ...

:func:`method_problems` checks a recipe's method sections and view groups (dotted paths and
suggestions, as every recipe error); :func:`resolve_view_groups` gives the engine each group's per-view
op lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..components.component import ComponentParams
from ..errors import Problem, RecipeError, closest
from ..registration.registry import Registry
from ..registration.validation_problems import coerced_value_problems


@dataclass(frozen=True)
class ResolvedViewGroup:
    """A view group with the validated op list of each of its views (``len(per_view)`` = its count)."""

    name: str
    per_view: tuple[tuple[ComponentParams, ...], ...]

    @property
    def count(self) -> int:
        return len(self.per_view)


def method_problems(recipe: BaseModel, registry: Registry) -> list[Problem]:
    """Problems of the recipe's ``[method]`` with the sections it needs and its view groups."""
    method = registry.get("method", recipe.method.type)
    problems: list[Problem] = []
    for section in method.OPTIONAL_SECTIONS:
        present = _section(recipe, section) is not None
        if section in method.requires and not present:
            problems.append(Problem(section, f"missing; method {method.name!r} needs [{section}]"))
        elif section not in method.requires and present:
            problems.append(Problem(section, f"method {method.name!r} does not use [{section}]; remove it"))
    for index, stage in enumerate(getattr(recipe, "stages", None) or []):
        if getattr(stage, "micro_batch_size", None) is not None and not method.splits_forward():
            problems.append(
                Problem(
                    f"stages[{index}].micro_batch_size",
                    f"method {method.name!r} overrides forward instead of splitting it into embed and "
                    "objective, so it cannot use gradient caching; remove micro_batch_size",
                )
            )
    try:
        resolve_view_groups(recipe, registry)
    except RecipeError as error:
        problems += error.problems
    return problems


def resolve_view_groups(recipe: BaseModel, registry: Registry) -> list[ResolvedViewGroup]:
    """The method's view groups in its order, each with its views' op lists; :class:`RecipeError` if the
    recipe's ``[[augmentations]]`` / ``[[views]]`` do not fit the method's groups."""
    method = registry.get("method", recipe.method.type)
    problems: list[Problem] = []
    groups: list[ResolvedViewGroup] = []
    tables: dict[str, tuple[int, Any]] = {}
    for index, table in enumerate(recipe.views):
        tables.setdefault(
            table.name, (index, table)
        )  # the first table of a name counts; later ones are errors
    if recipe.views and recipe.augmentations:
        problems.append(
            Problem(
                "augmentations",
                "give either [[augmentations]] (one list for every view) or [[views]] (a list per view "
                "group), not both",
            )
        )
    known = [group.name for group in method.views]
    for index, table in enumerate(recipe.views):
        if table.name not in known:
            problems.append(
                Problem(
                    f"views[{index}].name",
                    f"method {method.name!r} has no view group {table.name!r}; its groups: {', '.join(known)}",
                )
            )
        elif tables[table.name][0] != index:
            problems.append(Problem(f"views[{index}].name", f"view group {table.name!r} is given twice"))
    for group in method.views:
        if recipe.views:
            if group.name not in tables and group.optional:
                continue
            if group.name not in tables:
                problems.append(
                    Problem(
                        "views",
                        f"method {method.name!r} needs view group {group.name!r}: add a [[views]] table "
                        f'with name = "{group.name}" and its [[views.augmentations]]',
                    )
                )
                continue
            index, table = tables[group.name]
            where = f"views[{index}]"
            count = table.count if table.count is not None else group.count
            if group.count is not None and count != group.count:
                problems.append(
                    Problem(
                        f"{where}.count",
                        f"method {method.name!r} trains on {group.count} {group.name!r} views, not {count}",
                    )
                )
                continue
            if count is None:
                problems.append(
                    Problem(f"{where}.count", f"missing; method {method.name!r} leaves it to the recipe")
                )
                continue
            ops = tuple(table.augmentations)
            per_view, view_problems = _per_view_ops(ops, table.per_view, count, where, registry)
            problems += view_problems
            groups.append(ResolvedViewGroup(group.name, per_view))
        else:
            if not recipe.augmentations:
                problems.append(
                    Problem(
                        "augmentations",
                        f"missing; method {method.name!r} needs an [[augmentations]] list (or [[views]])",
                    )
                )
                break
            if group.count is None and group.optional:
                continue
            if group.count is None:
                problems.append(
                    Problem(
                        "views",
                        f"method {method.name!r} needs a [[views]] table for group {group.name!r} with its "
                        "count (the number of views is the recipe's choice)",
                    )
                )
                continue
            ops = tuple(recipe.augmentations)
            groups.append(ResolvedViewGroup(group.name, (ops,) * group.count))
    if problems:
        raise RecipeError("recipe", problems)
    return groups


def _per_view_ops(
    ops: tuple[ComponentParams, ...],
    changes: list[dict[str, dict[str, Any]]],
    count: int,
    where: str,
    registry: Registry,
) -> tuple[tuple[tuple[ComponentParams, ...], ...], list[Problem]]:
    """Each view's op list: ``ops`` with the view's ``per_view`` table applied (validated)."""
    if not changes:
        return (ops,) * count, []
    if len(changes) != count:
        return (), [
            Problem(f"{where}.per_view", f"has {len(changes)} tables for {count} views; give one per view")
        ]
    positions: dict[str, int] = {}
    repeated: set[str] = set()
    for index, op in enumerate(ops):
        if op.type in positions:
            repeated.add(op.type)
        positions[op.type] = index
    problems: list[Problem] = []
    views: list[tuple[ComponentParams, ...]] = []
    for view, table in enumerate(changes):
        view_ops = list(ops)
        for op_type, update in table.items():
            path = f"{where}.per_view[{view}].{op_type}"
            if op_type not in positions:
                problems.append(
                    Problem(
                        path,
                        f"the group's augmentations have no {op_type!r} op; they are: "
                        f"{', '.join(op.type for op in ops)}",
                    )
                )
                continue
            if op_type in repeated:
                problems.append(
                    Problem(
                        path,
                        f"{op_type!r} appears more than once in the list; per_view "
                        "names ops by type, so it cannot tell them apart",
                    )
                )
                continue
            op = ops[positions[op_type]]
            params_class = registry.get("augmentation", op_type).Params
            if "type" in update:
                problems.append(Problem(f"{path}.type", "an op's type cannot change per view"))
                continue
            try:
                view_ops[positions[op_type]] = params_class.model_validate(op.model_dump() | dict(update))
            except ValidationError as error:
                problems += _change_problems(error, params_class, op_type, path)
            else:
                problems += coerced_value_problems(update, view_ops[positions[op_type]], path)
        views.append(tuple(view_ops))
    return tuple(views), problems


def _change_problems(error: ValidationError, params_class: type, op_type: str, path: str) -> list[Problem]:
    """Problems of one op's per-view change, at ``path`` (``views[0].per_view[1].gaussian_blur``)."""
    keys = [key for key in params_class.model_fields if key != "type"]
    problems = []
    for item in error.errors(include_url=False):
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            suggestion = closest(key, keys)
            hint = f" did you mean {suggestion!r}?" if suggestion else ""
            message = f"unknown key {key!r};{hint} {op_type} has: {', '.join(keys)}"
        problems.append(Problem(f"{path}.{key}" if key else path, message))
    return problems


def _section(recipe: BaseModel, dotted: str) -> Any:
    value: Any = recipe
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value
