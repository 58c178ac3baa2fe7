"""Resolved recipes as TOML text, written by the ``tomli-w`` library (the standard ``tomllib`` only reads).

TOML has no null, so ``None`` values in tables are left out first: a missing key means the default,
which is what ``None`` stands for in a recipe. A ``None`` inside an array has no such meaning and is
refused (``TypeError``), as is any other value TOML cannot hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """Serialise ``data`` as TOML text; ``header`` lines are written first as comments.

    Raises ``TypeError`` for a value TOML cannot hold (``None`` in an array, an object that is no
    TOML type), naming its type.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    body = tomli_w.dumps(_without_none(data))
    return "\n".join([*lines, body]).strip("\n") + "\n"


def _without_none(value: Any) -> Any:
    """``value`` with every ``None`` entry of its tables (at any depth, in arrays too) removed."""
    if isinstance(value, Mapping):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_without_none(item) for item in value]
    return value
