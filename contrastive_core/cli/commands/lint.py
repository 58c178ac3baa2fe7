"""``contrastive lint RECIPE``: every departure of a recipe from its method's published settings.

For each setting of the method's table (:mod:`contrastive_core.components.published_setting`) that
applies to the recipe's dataset, the recipe's value is compared with the published one; a departure is
printed with the key, both values, the source and, where the paper measured it, the published effect.
Departures the recipe allows (``# lint: allow NAME reason``, :mod:`contrastive_core.recipes.lint`) are
listed as allowed. Exit code 0: no departure (or only allowed ones); 1: departures; 2: a bad recipe.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..arguments import add_overrides_argument, registry_from_args

if TYPE_CHECKING:
    from ...recipes.lint import LintResult

EXIT_DEPARTURES = 1


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    lint = commands.add_parser(
        "lint",
        parents=[common],
        help="compare a recipe with its method's published settings",
        description=(
            "Print every value of the recipe that departs from its method's paper: the key, the recipe's "
            "value, the paper's, the source and the published effect of the departure. Exit 0 with no "
            "departure (or only ones the recipe allows with '# lint: allow NAME reason'), 1 with "
            "departures, 2 for a bad recipe."
        ),
    )
    lint.add_argument("recipe", type=Path, help="the recipe TOML file")
    add_overrides_argument(lint, "loss.temperature=0.5")
    lint.add_argument("--json", action="store_true", help="print the result as JSON")
    lint.set_defaults(handler=run_lint)


def run_lint(args: argparse.Namespace, console: Console) -> int:
    from ...recipes.lint import lint_recipe
    from ...recipes.recipe import load_recipe

    registry = registry_from_args(args)
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)
    result = lint_recipe(recipe, registry, args.recipe.read_text(encoding="utf-8"))
    if args.json:
        console.print_json(json.dumps(as_json(result, args.recipe)))
    else:
        print_result(console, result, args.recipe)
    return EXIT_DEPARTURES if result.failing else 0


def as_json(result: LintResult, recipe: Path) -> dict:
    return {
        "recipe": str(recipe),
        "method": result.method,
        "dataset": result.dataset,
        "compared": result.compared,
        "departures": [departure.as_json() for departure in result.departures],
    }


def print_result(console: Console, result: LintResult, recipe: Path) -> None:
    from ...recipes.lint import format_value

    if result.method is None:
        console.print(Text(f"{recipe}: no [method] section; nothing to compare"))
        return
    if result.compared == 0:
        console.print(
            Text(f"{recipe}: method {result.method!r} publishes no settings that apply to this recipe")
        )
        return
    if result.departures:
        table = Table(title=f"{recipe}: departures from {result.method}'s published settings")
        for column in ("key", "recipe", "paper", "source", "published effect"):
            table.add_column(column, overflow="fold")
        for departure in result.departures:
            style = "dim" if departure.allowed is not None else ""
            effect = departure.setting.effect
            if departure.allowed is not None:
                effect = f"allowed: {departure.allowed or '(no reason given)'}" + (
                    f"; {effect}" if effect else ""
                )
            table.add_row(
                Text(departure.path, style=style),
                Text(format_value(departure.recipe_value), style=style),
                Text(format_value(departure.setting.value), style=style),
                Text(departure.setting.source, style=style),
                Text(effect, style=style),
            )
        console.print(table)
    failing, allowed = len(result.failing), len(result.departures) - len(result.failing)
    summary = (
        f"{result.compared} values compared with {result.method}'s published settings "
        f"(dataset {result.dataset}): {failing} departure{'s' * (failing != 1)}"
        + (f", {allowed} allowed" if allowed else "")
    )
    console.print(Text(summary, style="bold red" if failing else "green"))
