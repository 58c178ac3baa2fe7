"""Reading a run directory's records back: a stage's ``metrics.jsonl`` and the JSON records.

A run writes every JSON record atomically and appends one line per logging step to ``metrics.jsonl``,
so the only damage a killed run can leave is an unterminated last line of a ``metrics.jsonl``: it is
left out (``read_metrics``). Anything else that does not parse was damaged by something else; it is
reported with the file's name (and line), as a :class:`RunRecordError`, never as a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ContrastiveError

__all__ = ["RunRecordError", "read_json_record", "read_metrics"]


class RunRecordError(ContrastiveError):
    """A record of a run directory cannot be read; the message names the file."""


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` file (one JSON object per line, blank lines skipped).

    An unterminated last line that does not parse (a write cut short by a kill) is left out. Raises
    :class:`RunRecordError` naming the file and line for any other line that is not a JSON object.
    """
    path = Path(path)
    text = _read_text(path)
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            if number == len(lines):  # the last line, with no newline after it: an interrupted append
                break
            raise RunRecordError(
                f"{path}, line {number}: not a JSON record ({error}); the file is damaged"
            ) from None
        if not isinstance(record, dict):
            raise RunRecordError(
                f"{path}, line {number}: a JSON {type(record).__name__}, not a record object"
            )
        records.append(record)
    return records


def read_json_record(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path`` (``results.json``, ``manifest.json``, ``stage.json``, ...).

    Raises :class:`RunRecordError` naming the file when it cannot be read, is not JSON, or is not an
    object.
    """
    path = Path(path)
    try:
        record = json.loads(_read_text(path))
    except (ValueError, RecursionError) as error:
        raise RunRecordError(f"{path} is damaged: not JSON ({error})") from None
    if not isinstance(record, dict):
        raise RunRecordError(f"{path} is damaged: a JSON {type(record).__name__}, not an object")
    return record


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RunRecordError(f"{path} is damaged: not UTF-8 text ({error})") from None
    except OSError as error:
        raise RunRecordError(f"cannot read {path}: {error.strerror or error}") from None
