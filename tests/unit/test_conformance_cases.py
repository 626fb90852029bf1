"""The conformance cases as data: each names a clause and one requirement, uses only HTTP (no Agora import), and the
known gaps, features and inventory they refer to exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance.features import FEATURES
from conformance.inventory import INVENTORY, TITLES, covers
from conformance.kit import Case
from conformance.known_gaps import AGORA
from conformance.runner import coverage, load_cases, select

CASES_DIR = Path(__file__).resolve().parents[2] / "conformance" / "cases"
CLAUSE = re.compile(r"^\d+(\.\d+)*$")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases()


def test_every_case_names_a_clause_and_one_requirement(cases: list[Case]) -> None:
    assert len(cases) >= 150
    for case in cases:
        assert all(CLAUSE.match(c) for c in case.clauses), case.name
        assert case.requirement.endswith(".") and len(case.requirement) < 160, case.name
        assert case.requirement.count(". ") == 0, f"{case.name}: one sentence"
        assert case.clause in TITLES, f"{case.name}: clause {case.clause} has no title in conformance/inventory.py"


def test_features_and_known_gaps_refer_to_what_exists(cases: list[Case]) -> None:
    names = {case.name for case in cases}
    assert {case.feature for case in cases if case.feature} <= set(FEATURES)
    assert set(AGORA) <= names
    for gap in AGORA.values():
        assert gap.reason and (gap.issue is None or gap.issue > 0)


def test_cases_import_nothing_from_agora() -> None:
    for path in CASES_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert not module.startswith(("broker", "adapters", "ontologies", "tests")), f"{path.name}: {module}"


def test_only_selects_by_clause_group_and_name(cases: list[Case]) -> None:
    by_clause = select(cases, ["5.6"])
    assert by_clause and all(any(covers("5.6", c) for c in case.clauses) for case in by_clause)
    assert not any(case.clause == "5.7.2" and not any(covers("5.6", c) for c in case.clauses) for case in by_clause)
    assert {case.group for case in select(cases, ["batch"])} == {"batch"}
    assert [case.name for case in select(cases, ["entities.delete_entity"])] == ["entities.delete_entity"]
    both = select(cases, ["batch,tenancy"])
    assert {case.group for case in both} == {"batch", "tenancy"}
    assert select(cases, []) == cases
    assert select(cases, ["99.9"]) == []


def test_coverage_counts_sub_clauses_and_lists_the_missing(cases: list[Case]) -> None:
    rows = coverage(cases)
    assert [clause for clause, _, _ in rows] == [clause for clause, _ in INVENTORY]
    counts = {clause: n for clause, _, n in rows}
    assert counts["6.4"] >= 5 and counts["4.9"] >= 5 and counts["7"] == 1
    assert (
        counts["6.36"] >= 5 and counts["6.37"] >= 5 and counts["6.38"] >= 3
    )  # snapshots (conformance/cases/snapshots.py)
    assert [clause for clause, _, n in rows if n == 0] == [c for c, _ in INVENTORY if counts[c] == 0]


def test_covers_is_prefix_by_clause_not_by_string() -> None:
    assert covers("6.3", "6.3.5") and covers("6.3.5", "6.3.5")
    assert not covers("6.3", "6.30") and not covers("5.6.1", "5.6.17")
