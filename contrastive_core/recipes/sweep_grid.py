"""The grid of a ``contrastive sweep``: every combination of the values given for each ``--set`` key.

``--set loss.temperature=0.1,0.2,0.5`` gives that key three values; a ``--set`` without a top-level comma
gives one value to every point. Commas inside a TOML array, table or string (``scale=[0.2, 1.0]``,
``data.root="a,b"``) do not split. Points are ordered as nested loops over the keys in the order they
were given, the last key varying fastest; each point is a list of ordinary ``KEY=VALUE`` overrides.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .overrides import parse_override


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its overrides (``KEY=VALUE`` texts) and its run directory's name."""

    overrides: tuple[str, ...]
    name: str


def split_values(raw: str) -> list[str]:
    """The comma-separated values of one ``--set`` value, ignoring commas inside brackets, braces and
    quotes; ValueError for an empty value (``a=1,,2``) or unbalanced brackets."""
    values, depth, quote, start = [], 0, "", 0
    for position, char in enumerate(raw):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(raw[start:position].strip())
            start = position + 1
    values.append(raw[start:].strip())
    if depth != 0 or quote:
        raise ValueError(f"unbalanced brackets or quotes in {raw!r}")
    if any(not value for value in values):
        raise ValueError(f"an empty value in {raw!r}; separate the values with single commas")
    return values


def sweep_grid(settings: Sequence[str]) -> list[SweepPoint]:
    """The points of the grid that the ``--set`` texts ``settings`` span (see the module docstring).

    ValueError for a malformed ``--set``, a key given twice, or a key with a value repeated.
    """
    axes: list[tuple[str, list[str]]] = []
    for text in settings:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {text!r}: expected KEY=VALUE[,VALUE...], e.g. loss.temperature=0.1,0.2")
        if any(key == existing for existing, _ in axes):
            raise ValueError(f"--set {key} is given twice; list its values once, separated by commas")
        values = split_values(raw)
        if len(set(values)) != len(values):
            raise ValueError(f"--set {key}: a value is listed twice ({raw})")
        for value in values:
            parse_override(f"{key}={value}")  # the same errors as a plain --set
        axes.append((key, values))
    varied = [key for key, values in axes if len(values) > 1]
    points = []
    for combination in itertools.product(*(values for _, values in axes)):
        overrides = tuple(f"{key}={value}" for (key, _), value in zip(axes, combination, strict=True))
        label = [
            f"{key}={value}" for (key, values), value in zip(axes, combination, strict=True) if key in varied
        ]
        points.append(SweepPoint(overrides, point_name(label) if label else "base"))
    return points


def point_name(parts: Sequence[str]) -> str:
    """A run directory name for a point: its varied ``key=value`` pairs joined by ``__``, with every
    character a file name should not hold replaced by ``_``."""
    return "__".join(re.sub(r"[^A-Za-z0-9_.=+-]", "_", part) for part in parts)
