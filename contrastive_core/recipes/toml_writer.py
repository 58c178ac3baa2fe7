"""A small TOML writer for resolved recipes (tomllib only reads).

Handles what a validated recipe dumps to: tables, arrays of tables, strings, booleans, integers,
floats (inf and nan included) and arrays of scalars. ``None`` values are left out (TOML has no null;
a missing key means the default).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """Serialise ``data`` as TOML text; ``header`` lines are written first as comments."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _write_table(lines, (), data)
    return "\n".join(lines).strip("\n") + "\n"


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    scalars = {
        k: v for k, v in table.items() if v is not None and not _is_table(v) and not _is_table_array(v)
    }
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if _is_table(value):
            # A table holding only sub-tables needs no header of its own ([model] before [model.encoder]).
            if not value or any(not _is_table(v) and v is not None for v in value.values()):
                lines.extend(["", f"[{_dotted((*path, key))}]"])
            _write_table(lines, (*path, key), value)
        elif _is_table_array(value):
            for item in value:
                lines.extend(["", f"[[{_dotted((*path, key))}]]"])
                _write_table(lines, (*path, key), item)


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(isinstance(v, Mapping) for v in value)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)  # fullmatch: '$' would allow a final newline


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character (DEL too) escaped."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):  # TOML arrays may mix types, inline tables included
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return _inline_table(value)
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def _inline_table(table: Mapping[str, Any]) -> str:
    items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None)
    return "{" + items + "}"
