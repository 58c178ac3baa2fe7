"""``contrastive recipes [NAME] [--copy [DEST]] [--force]``: the recipes shipped with the package.

Without a name: a table of every shipped recipe (name, method, dataset, the first line of its
``# Target:`` header). With a name: the recipe's text on stdout, or with ``--copy`` a copy of it to
``DEST`` (a file, or a folder; default: ``./NAME.toml``) to edit and run. A copy never replaces an
existing file unless ``--force`` is given. So a pip install, which has no ``recipes/`` folder, can run
them: ``contrastive recipes quickstart --copy && contrastive run quickstart.toml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ...errors import ContrastiveError
from ..recipe_catalog import copy_recipe, find_recipe, shipped_recipes

#: ``--copy`` given without a destination.
_HERE = object()


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    recipes = commands.add_parser(
        "recipes",
        parents=[common],
        help="list the shipped recipes, print one or copy it out",
        description="List the recipes shipped with contrastive; print one (NAME) or copy it to a file "
        "to edit and run (NAME --copy [DEST]).",
    )
    recipes.add_argument("name", nargs="?", metavar="NAME", help="a shipped recipe, e.g. quickstart")
    recipes.add_argument(
        "--copy",
        nargs="?",
        const=_HERE,
        type=Path,
        metavar="DEST",
        help="copy the recipe to DEST, a file or a folder (default: ./NAME.toml)",
    )
    recipes.add_argument("--force", action="store_true", help="with --copy: replace an existing file")
    recipes.set_defaults(handler=run_recipes)


def run_recipes(args: argparse.Namespace, console: Console) -> int:
    if args.name is None:
        if args.copy is not None or args.force:
            raise ContrastiveError("--copy and --force need a recipe: contrastive recipes NAME --copy [DEST]")
        console.print(_table())
        return 0
    recipe = find_recipe(args.name)
    if args.copy is None:
        if args.force:
            raise ContrastiveError(
                "--force applies to --copy: contrastive recipes NAME --copy [DEST] --force"
            )
        console.file.write(recipe.text)  # verbatim, so `contrastive recipes NAME > file.toml` works too
        return 0
    written = copy_recipe(recipe, None if args.copy is _HERE else args.copy, force=args.force)
    console.print(Text(f"copied recipe {recipe.name!r} to {written}; run it with: contrastive run {written}"))
    return 0


def _table() -> Table:
    table = Table(title="shipped recipes (contrastive recipes NAME --copy)")
    for column in ("name", "method", "dataset", "target"):
        table.add_column(column, overflow="fold")
    for recipe in shipped_recipes():
        cells = (recipe.name, recipe.method or "-", recipe.dataset or "-", recipe.target or "")
        table.add_row(*(Text(cell) for cell in cells))
    return table
