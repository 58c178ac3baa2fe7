"""docs/reliability.md is generated from the cases the reliability tests run, and stays so."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.reliability.cases import ELSEWHERE, GROUPS

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "reliability_table", ROOT / "scripts" / "reliability_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_is_the_scripts_output():
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert page == _script().render(), "regenerate it: .venv/bin/python scripts/reliability_table.py --write"


def test_every_case_is_in_a_group_with_its_test_file_and_a_unique_id():
    for group in GROUPS:
        assert (ROOT / group.test_file).is_file(), group.test_file
        ids = [case.id for case in group.cases]
        assert len(ids) == len(set(ids)), group.title
        assert all(case.suite in ("default", "slow") for case in group.cases)


def test_the_tests_named_as_covering_other_faults_exist():
    for item in ELSEWHERE:
        path, function = item.test.split("::")
        assert f"def {function}(" in (ROOT / path).read_text(encoding="utf-8"), item.test
