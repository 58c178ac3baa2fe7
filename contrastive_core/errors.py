"""The errors users see: each names where the problem is and what would fix it.

The CLI prints these without a traceback and exits with code 2.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most similar to ``word`` (for 'did you mean ...?'), or None if none is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class ContrastiveError(Exception):
    """Base of the errors the CLI reports as a clean message, without a traceback.

    ``exit_code`` is 2 for bad input (recipes, plugins, data, run directories); errors of a run that
    started correctly (a diverging loss, a failed checkpoint write) use 1.
    """

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem in a recipe: the dotted key path (``loss.temperature``, ``stages[0].epochs``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(recipe)'}: {self.message}"


class RecipeError(ContrastiveError):
    """A recipe that does not validate; ``source`` is the file (or 'recipe' for in-memory dicts)."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {problem}" for problem in self.problems)])


class PluginError(ContrastiveError):
    """Plugins that could not be loaded or registered components that cannot be used."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = ["plugin problems:", *(f"  {problem}" for problem in self.problems)]
        lines.append(
            "  Fix or uninstall the plugin, or block it: --block NAME "
            "(or CONTRASTIVE_BLOCK_PLUGINS=NAME[,NAME...])."
        )
        return "\n".join(lines)


#: Components the built-in plugins register only where an optional extra of this distribution is
#: installed, by (kind, name), with that extra (named after the module it installs): asking for one
#: while that module is missing says what to install.
OPTIONAL_COMPONENTS = {("encoder", "timm"): "timm"}


class UnknownComponentError(ContrastiveError, KeyError):
    """A component name that no loaded plugin registers."""

    def __init__(self, kind: str, name: object, registered: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.registered = sorted(registered)
        super().__init__(str(self))

    def __str__(self) -> str:
        extra = OPTIONAL_COMPONENTS.get((self.kind, self.name)) if isinstance(self.name, str) else None
        if extra is not None and importlib.util.find_spec(extra) is None:
            return (
                f"{self.kind} {self.name!r} needs the optional package {extra!r}, which is not installed: "
                f"pip install 'contrastive[{extra}]'"
            )
        if not self.registered:
            return f"no {self.kind} component is registered (are the plugins loaded or blocked?)"
        text = f"unknown {self.kind} {self.name!r}"
        suggestion = closest(str(self.name), self.registered)
        text += f"; did you mean {suggestion!r}?" if suggestion else "."
        return f"{text} Registered: {', '.join(self.registered)}"
