"""Attributes the ontology marks as personal data (GDPR art. 4(1)): decision record 0222.

The marks are ``ontologies/personal_data.csv``, one attribute IRI a line with its category (contact, identity,
location ...) and why it is personal. The access policies deny these attributes by default: only a rule that names
an attribute grants it (broker.core.access). Issue 19 (GDPR duties: erasure, retention) extends the same table.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources
from typing import NamedTuple


class PersonalMark(NamedTuple):
    iri: str
    category: str
    why: str


@cache
def personal_marks() -> dict[str, PersonalMark]:
    """Every mark of the shipped table, by attribute IRI."""
    text = resources.files("ontologies").joinpath("personal_data.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return {row["iri"]: PersonalMark(row["iri"], row["category"], row["why"]) for row in rows}


def personal_iris() -> frozenset[str]:
    return frozenset(personal_marks())
