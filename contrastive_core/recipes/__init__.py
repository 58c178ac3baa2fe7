"""Recipes: the typed TOML model assembled from the registry, its validation, and writing it back.

* :mod:`.recipe`: :func:`recipe_model`, :func:`load_recipe`, :func:`validate_recipe`, stage keys,
  :func:`recipe_warnings` (valid but implausible values);
* :mod:`.run_settings`: the ``[run]`` section;
* :mod:`.overrides`: ``--set key.path=value``;
* :mod:`.view_groups`: a recipe's view groups resolved against its method;
* :mod:`.component_table`: params fields holding another component's table, checked at validation;
* :mod:`.toml_writer`: the resolved recipe as TOML;
* :mod:`.lint`: a recipe against its method's published settings (``contrastive lint``).
"""

from __future__ import annotations

from .component_table import ComponentTable, component_table_problems
from .lint import ABSENT, Departure, LintResult, lint_allowances, lint_recipe
from .overrides import Override, apply_overrides, parse_override
from .recipe import (
    COMPONENT_SECTIONS,
    LIST_SECTIONS,
    MODEL_SECTIONS,
    Recipe,
    load_recipe,
    recipe_model,
    recipe_warnings,
    stage_keys,
    validate_recipe,
)
from .run_settings import RunSettings
from .toml_writer import dumps
from .view_groups import ResolvedViewGroup, method_problems, resolve_view_groups

__all__ = [
    "ABSENT",
    "Departure",
    "LintResult",
    "lint_allowances",
    "lint_recipe",
    "COMPONENT_SECTIONS",
    "LIST_SECTIONS",
    "MODEL_SECTIONS",
    "ComponentTable",
    "Override",
    "Recipe",
    "ResolvedViewGroup",
    "RunSettings",
    "apply_overrides",
    "component_table_problems",
    "dumps",
    "load_recipe",
    "method_problems",
    "parse_override",
    "recipe_model",
    "recipe_warnings",
    "resolve_view_groups",
    "stage_keys",
    "validate_recipe",
]
