"""The cases of tests/reliability/cases.py as pytest parameters."""

from __future__ import annotations

import pytest

from tests.reliability.cases import SLOW


def mark_suite(cases: list) -> list:
    """pytest params of ``cases`` (each with ``id`` and ``suite``), the slow ones marked slow."""
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.suite == SLOW else [])
        for case in cases
    ]
