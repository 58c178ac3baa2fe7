"""``--set key.path=value`` overrides: a dotted path into the recipe and a TOML literal."""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")


@dataclass(frozen=True)
class Override:
    """One ``--set``: ``path`` such as ('stages', 0, 'epochs'), the parsed value, the original text."""

    path: tuple[str | int, ...]
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """Parse ``a.b[0].c=VALUE`` (``a.b.0.c`` works too).

    VALUE is read as a TOML literal (``0.5``, ``true``, ``"x"``, ``[1, 2]``, ``{type = "sgd"}``); a value
    that is no TOML literal is taken as a plain string, so ``--set data.root=/data/cifar`` needs no quotes.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError("expected KEY=VALUE, e.g. --set loss.temperature=0.2")
    path: list[str | int] = []
    for piece in key.strip().split("."):
        if piece.isdigit():
            path.append(int(piece))
            continue
        match = _PART.fullmatch(piece)
        if not match:
            raise ValueError(f"cannot read key path {key.strip()!r} (use dotted names and [index])")
        path.append(match.group(1))
        path.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    if isinstance(path[0], int):
        raise ValueError(f"key path {key.strip()!r} must start with a section name")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise ValueError(
            "the value's arrays or tables are nested too deeply to be read (hundreds of levels)"
        ) from None
    return Override(tuple(path), value, text)


def apply_overrides(data: Mapping[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """A copy of ``data`` with each override set, creating intermediate tables as needed."""
    result = copy.deepcopy(dict(data))
    for override in overrides:
        node: Any = result
        for depth, part in enumerate(override.path[:-1]):
            following = override.path[depth + 1]
            node = _child(node, part, override, create=dict if not isinstance(following, int) else None)
        _assign(node, override.path[-1], override)
    return result


def _child(node: Any, part: str | int, override: Override, create: type | None) -> Any:
    if isinstance(part, int):
        _check_index(node, part, override)
        return node[part]
    if not isinstance(node, dict):
        raise ValueError(f"--set {override.text}: {part!r} is inside a value that is not a table")
    if part not in node:
        if create is None:
            raise ValueError(f"--set {override.text}: the recipe has no list {part!r} to index into")
        node[part] = create()
    return node[part]


def _assign(node: Any, part: str | int, override: Override) -> None:
    if isinstance(part, int):
        _check_index(node, part, override)
    elif not isinstance(node, dict):
        raise ValueError(f"--set {override.text}: {part!r} is inside a value that is not a table")
    node[part] = override.value


def _check_index(node: Any, index: int, override: Override) -> None:
    if not isinstance(node, list):
        raise ValueError(f"--set {override.text}: [{index}] indexes something that is not a list")
    if index >= len(node):
        raise ValueError(
            f"--set {override.text}: index {index} is out of range (the list has {len(node)} entries)"
        )
