"""The recipes shipped in the package: their names and summaries, and copying one out to edit or run.

They are the TOML files of the data package ``contrastive_core.shipped_recipes`` (the repository's
``recipes/`` folder, see pyproject.toml), read through :mod:`importlib.resources`, so the same code
finds them in a wheel and in an editable install. Reading them needs no registry (and so no torch).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ContrastiveError, closest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PACKAGE = "contrastive_core.shipped_recipes"
SUFFIX = ".toml"
#: The header line that states what a recipe reaches (every shipped recipe opens with one).
TARGET_PREFIX = "# Target:"


class UnknownRecipeError(ContrastiveError, KeyError):
    """A recipe name that is not shipped; the message suggests the closest and lists them all."""

    def __init__(self, name: str, shipped: list[str]) -> None:
        self.name = name
        self.shipped = shipped
        super().__init__(str(self))

    def __str__(self) -> str:
        suggestion = closest(self.name, self.shipped)
        hint = f"; did you mean {suggestion!r}?" if suggestion else "."
        return f"unknown recipe {self.name!r}{hint} Shipped recipes: {', '.join(self.shipped)}"


class RecipeCopyError(ContrastiveError):
    """A copy that would overwrite a file (without ``--force``) or has nowhere to go."""


@dataclass(frozen=True)
class ShippedRecipe:
    """One shipped recipe: its name (the file name less ``.toml``), exact text and what it sets."""

    name: str
    text: str
    method: str | None
    """``[method] type``, None without a method section."""
    dataset: str | None
    """``[data] type``, None without a data section."""
    target: str | None
    """The rest of the first ``# Target:`` line of the header (the comments the file opens with), with
    " ..." when the next comment line continues it."""

    @classmethod
    def from_text(cls, name: str, text: str) -> ShippedRecipe:
        recipe = tomllib.loads(text)
        return cls(name, text, _section_type(recipe, "method"), _section_type(recipe, "data"), _target(text))

    @property
    def file_name(self) -> str:
        return self.name + SUFFIX


def shipped_recipes() -> list[ShippedRecipe]:
    """Every shipped recipe, by name."""
    files = [entry for entry in resources.files(PACKAGE).iterdir() if entry.name.endswith(SUFFIX)]
    recipes = [
        ShippedRecipe.from_text(entry.name[: -len(SUFFIX)], entry.read_text(encoding="utf-8"))
        for entry in files
    ]
    return sorted(recipes, key=lambda recipe: recipe.name)


def find_recipe(name: str) -> ShippedRecipe:
    """The shipped recipe called ``name`` (``quickstart`` or ``quickstart.toml``)."""
    wanted = name.removesuffix(SUFFIX)
    recipes = shipped_recipes()
    for recipe in recipes:
        if recipe.name == wanted:
            return recipe
    raise UnknownRecipeError(wanted, [recipe.name for recipe in recipes])


def copy_recipe(recipe: ShippedRecipe, destination: Path | None = None, *, force: bool = False) -> Path:
    """Write ``recipe`` to ``destination`` and return the file written.

    ``destination`` is a file, or an existing folder to copy into under the recipe's file name; by
    default the current folder. An existing file is overwritten only with ``force``.
    """
    target = Path(destination) if destination is not None else Path()
    if target.is_dir():
        target = target / recipe.file_name
    if not target.parent.is_dir():
        raise RecipeCopyError(
            f"cannot copy recipe {recipe.name!r} to {target}: folder {target.parent} does not exist"
        )
    try:
        # "x": the check that the file is new and the creation are one step (no race with another writer).
        with open(target, "w" if force else "x", encoding="utf-8", newline="") as handle:
            handle.write(recipe.text)
    except FileExistsError:
        raise RecipeCopyError(
            f"{target} already exists; not overwriting it (pass --force to replace it, or choose another "
            "destination)"
        ) from None
    return target


def _section_type(recipe: dict, section: str) -> str | None:
    """``type`` of the recipe's top-level ``[section]``, if it has one."""
    table = recipe.get(section)
    value = table.get("type") if isinstance(table, dict) else None
    return value if isinstance(value, str) else None


def _target(text: str) -> str | None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("#"):
            break  # the header ends at the first line that is not a comment
        if line.startswith(TARGET_PREFIX):
            target = line[len(TARGET_PREFIX) :].strip()
            following = lines[index + 1] if index + 1 < len(lines) else ""
            continued = following.startswith("#") and following.lstrip("#").strip()
            return target + " ..." if continued else target  # the sentence goes on in the file
    return None
