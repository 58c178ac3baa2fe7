"""Typed TOML recipes: the recipe model assembled from the registered params models, and validation.

A recipe has shared sections (``[run]``, ``[data]``, ``[method]``, ``[[augmentations]]`` or
``[[views]]``, ``[model.encoder]``, ``[model.head]``, ``[model.predictor]``, ``[loss]``, ``[optimizer]``,
``[scheduler]``) and an ordered ``[[stages]]`` list.
Each component section is a discriminated union on ``type`` over every registered class of its kind,
so a third-party component is usable in a recipe without any change here. Errors are reported with the
file, the dotted key path and a suggestion; nothing in a recipe is ever imported or evaluated.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..components.component import ComponentParams
from ..errors import Problem, RecipeError, UnknownComponentError
from ..registration.registry import Registry
from ..registration.validation_problems import (
    coerced_value_problems,
    format_path,
    problems_from_validation_error,
    show_value,
)
from .component_table import component_table_problems
from .overrides import Override, apply_overrides, parse_override
from .run_settings import RunSettings
from .view_groups import method_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Recipe sections that hold one component, with the kind they hold.
COMPONENT_SECTIONS = {
    "method": "method",
    "data": "dataset",
    "loss": "loss",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
}
MODEL_SECTIONS = {"encoder": "encoder", "head": "head", "predictor": "head"}
LIST_SECTIONS = {"augmentations": "augmentation", "stages": "stage"}

#: Why a recipe nested hundreds of levels deep is refused (no real recipe nests more than a few).
TOO_DEEP = (
    "tables or arrays are nested too deeply to be read (hundreds of levels; a recipe needs a few): "
    "the file is damaged or was not written as a recipe"
)

Recipe = BaseModel  # the concrete class is built per registry by recipe_model(); this names the type


def _union(registry: Registry, kind: str) -> Any:
    classes = tuple(registration.cls.Params for registration in registry.registrations(kind))
    if not classes:
        return None
    return Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007 - runtime-built union


def recipe_model(registry: Registry) -> type[BaseModel]:
    """The pydantic model of a recipe over what ``registry`` holds (built once per registry)."""
    cached = getattr(registry, "_recipe_model", None)
    if cached is not None:
        return cached
    config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    def optional(kind: str, description: str) -> Any:
        union = _union(registry, kind)
        return (union | None if union is not None else None, Field(None, description=description))

    encoder = _union(registry, "encoder")
    model_section = create_model(
        "ModelSection",
        __config__=config,
        __doc__="The network trained by pretraining: encoder f and projection head g.",
        encoder=(encoder if encoder is not None else None, Field(..., description="The encoder f.")),
        head=optional("head", "The projection head g (pretraining only; evaluation uses the encoder)."),
        predictor=optional(
            "head",
            "The predictor q on top of the head, for methods that use one (BYOL, MoCo v3); built with "
            "in_dim = the head's out_dim.",
        ),
    )
    augmentation = _union(registry, "augmentation")
    augmentation_list = list[augmentation] if augmentation is not None else list[None]
    view_group = create_model(
        "ViewGroupTable",
        __config__=config,
        __doc__="One group of views of every image, made by one augmentation list (see docs/methods.md).",
        name=(str, Field(..., description="The group's name, one of the method's groups (e.g. 'global').")),
        count=(
            int | None,
            Field(None, ge=1, description="Views of every image in this group; default: the method's."),
        ),
        augmentations=(
            augmentation_list,
            Field(..., min_length=1, description="The augmentation list making each view of the group."),
        ),
        per_view=(
            list[dict[str, dict[str, Any]]],
            Field(
                default_factory=list,
                description="Per-view changes of the list's ops, one table per view keyed by op type, e.g. "
                "[{gaussian_blur = {p = 1.0}}, {gaussian_blur = {p = 0.1}}] (BYOL's asymmetric views).",
            ),
        ),
    )
    stage = _union(registry, "stage")
    model = create_model(
        "Recipe",
        __config__=config,
        __doc__="A contrastive recipe: shared components and the ordered list of stages to run.",
        run=(RunSettings, Field(default_factory=RunSettings, description="Settings of the whole run.")),
        data=optional("dataset", "The dataset pretraining and (by default) evaluation use."),
        method=optional("method", "The self-supervised method: its views, networks and objective."),
        augmentations=(
            augmentation_list,
            Field(
                default_factory=list,
                description="The augmentation pipeline, applied in order to make each view (of every view "
                "group of the method; [[views]] gives groups their own lists instead).",
            ),
        ),
        views=(
            list[view_group],
            Field(
                default_factory=list,
                description="View groups with their own augmentation lists (multi-crop, asymmetric views).",
            ),
        ),
        model=(model_section | None, Field(None, description="Encoder, projection head and predictor.")),
        loss=optional("loss", "The self-supervised loss."),
        optimizer=optional("optimizer", "The optimizer of pretraining."),
        scheduler=optional("scheduler", "The learning-rate schedule of pretraining."),
        stages=(
            list[stage] if stage is not None else list[None],
            Field(..., min_length=1, description="The stages to run, in order."),
        ),
    )
    registry._recipe_model = model  # type: ignore[attr-defined]
    return model


def recipe_warnings(model: BaseModel, where: str = "") -> list[Problem]:
    """The :meth:`~contrastive_core.ComponentParams.recipe_warnings` of every component of a validated
    recipe (sections, stages, augmentations, view groups, nested tables), with their dotted paths."""
    found: list[Problem] = []
    if isinstance(model, ComponentParams):
        found += [
            Problem(
                f"{where}.{warning.path}" if warning.path and where else warning.path or where,
                warning.message,
            )
            for warning in model.recipe_warnings()
        ]
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        path = f"{where}.{name}" if where else name
        items = [(path, value)] if isinstance(value, BaseModel) else []
        if isinstance(value, list | tuple):
            items = [
                (f"{path}[{index}]", item) for index, item in enumerate(value) if isinstance(item, BaseModel)
            ]
        for item_path, item in items:
            found += recipe_warnings(item, item_path)
    return found


def stage_keys(recipe: BaseModel) -> list[str]:
    """The key of each stage in results.json and the run directory: its type, numbered if repeated."""
    keys: list[str] = []
    for stage in recipe.stages:
        count = sum(1 for other in recipe.stages[: len(keys)] if other.type == stage.type)
        keys.append(stage.type if count == 0 else f"{stage.type}_{count + 1}")
    return keys


# --------------------------------------------------------------------------------------- validation


def load_recipe(path: str | Path, *, registry: Registry, overrides: Sequence[str] = ()) -> BaseModel:
    """Read, override and validate the recipe at ``path``; raises :class:`RecipeError`."""
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise RecipeError(source, [Problem("", "is a directory; give the recipe's .toml file")])
    if not path.is_file():
        raise RecipeError(source, [Problem("", f"no such recipe file (looked for {path.resolve()})")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(source, [Problem("", f"not UTF-8 text: {error}")]) from None
    if text.startswith("\ufeff"):
        raise RecipeError(
            source,
            [
                Problem(
                    "",
                    "starts with a UTF-8 byte-order mark (BOM), which TOML does not allow; save the file as UTF-8 without BOM",
                )
            ],
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(source, [Problem("", f"not valid TOML: {error}")]) from None
    except RecursionError:  # tomllib parses nested tables and arrays recursively
        raise RecipeError(source, [Problem("", f"not a usable recipe: {TOO_DEEP}")]) from None
    return validate_recipe(data, registry=registry, source=source, overrides=overrides)


def validate_recipe(
    data: Mapping[str, Any],
    *,
    registry: Registry,
    source: str = "recipe",
    overrides: Sequence[str] = (),
) -> BaseModel:
    """Validate a recipe given as a dict (as read from TOML), after applying ``--set`` overrides."""
    try:
        return _validate(data, registry, source, overrides)
    except RecursionError:
        # Copying and validating walk the data recursively: a dict nested deeper than Python's stack
        # allows (only possible from Python, or --set; TOML files are refused when read) is named here.
        raise RecipeError(source, [Problem("", TOO_DEEP)]) from None


def _validate(
    data: Mapping[str, Any], registry: Registry, source: str, overrides: Sequence[str]
) -> BaseModel:
    parsed: list[Override] = []
    problems: list[Problem] = []
    for text in overrides:
        try:
            parsed.append(parse_override(text))
        except ValueError as error:
            problems.append(Problem("", f"--set {text}: {error}"))
    if problems:
        raise RecipeError(source, problems)
    try:
        data = apply_overrides(data, parsed)
    except ValueError as error:
        raise RecipeError(source, [Problem("", str(error))]) from None

    problems = _check_types(data, registry)
    model = recipe_model(registry)
    if not problems:
        try:
            recipe = model.model_validate(data)
        except ValidationError as error:
            tables = {path: value for path, _, value in _component_positions(data)}
            problems = problems_from_validation_error(error, model, data, tables)
        else:
            problems = coerced_value_problems(data, recipe)
            problems += _check_stage_requirements(recipe, registry)
            if recipe.method is not None:
                problems += method_problems(recipe, registry)
            problems += component_table_problems(recipe, registry, "")
            if not problems:
                return recipe
    raise RecipeError(source, [_mark_override(problem, parsed) for problem in problems])


def _component_positions(data: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """(path, kind, value) of every component table present in ``data``."""
    positions: list[tuple[tuple[str | int, ...], str, Any]] = []
    for section, kind in COMPONENT_SECTIONS.items():
        if section in data:
            positions.append(((section,), kind, data[section]))
    model = data.get("model")
    if isinstance(model, Mapping):
        for section, kind in MODEL_SECTIONS.items():
            if section in model:
                positions.append((("model", section), kind, model[section]))
    for section, kind in LIST_SECTIONS.items():
        items = data.get(section)
        if isinstance(items, list):
            positions.extend(((section, index), kind, item) for index, item in enumerate(items))
    groups = data.get("views")
    if isinstance(groups, list):
        for group_index, group in enumerate(groups):
            items = group.get("augmentations") if isinstance(group, Mapping) else None
            if isinstance(items, list):
                positions.extend(
                    (("views", group_index, "augmentations", index), "augmentation", item)
                    for index, item in enumerate(items)
                )
    return positions


def _check_types(data: Mapping[str, Any], registry: Registry) -> list[Problem]:
    """Every component table has a ``type`` naming a registered component of its kind."""
    problems: list[Problem] = []
    for path, kind, value in _component_positions(data):
        where = format_path(path)
        names = registry.names(kind)
        if not isinstance(value, Mapping):
            problems.append(Problem(where, f"expected a table with a 'type' key, got {show_value(value)}"))
        elif "type" not in value:
            problems.append(
                Problem(f"{where}.type", f"missing; registered {kind} types: {', '.join(names) or '(none)'}")
            )
        elif value["type"] not in names:
            problems.append(Problem(f"{where}.type", str(UnknownComponentError(kind, value["type"], names))))
    if "stages" not in data:
        problems.append(Problem("stages", "missing; a recipe needs at least one [[stages]] entry"))
    return problems


def _check_stage_requirements(recipe: BaseModel, registry: Registry) -> list[Problem]:
    """Each stage's ``requires`` (section names, dotted for nested ones: ``model.head``) are present."""
    problems = []
    for index, stage in enumerate(recipe.stages):
        for section in registry.get("stage", stage.type).requires:
            value: Any = recipe
            for part in section.split("."):
                value = getattr(value, part, None)
            if value is None or value == []:
                message = f"stage {stage.type!r} needs [{section}], which the recipe does not have"
                if section == "method":
                    message += (
                        ". A recipe names its self-supervised method in a table of its own, e.g. "
                        '[method] type = "simclr" above [loss] (registered methods: '
                        f"{', '.join(registry.names('method')) or 'none'})"
                    )
                problems.append(Problem(f"stages[{index}]", message))
    return problems


def _mark_override(problem: Problem, overrides: Sequence[Override]) -> Problem:
    for override in overrides:
        path = format_path(override.path)
        if problem.path == path or problem.path.startswith((path + ".", path + "[")):
            return Problem(problem.path, f"{problem.message} [from --set {override.text}]")
    return problem
