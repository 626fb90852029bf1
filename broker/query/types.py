"""Entity type selection (clause 4.17): `A,B` and `A|B` are OR, `A;B` is AND, parentheses group, `*` is all.

    Selection = "*" / Or
    Or        = And *(("," / "|") And)
    And       = Factor *(";" Factor)                  ; ";" binds tighter than "," and "|"
    Factor    = "(" Or ")" / TypeName

The clause writes AND inside parentheses, `(A;B)`; a bare `A;B` is accepted too since it can only mean AND.
Type names are expanded with the request's TermMap, so the AST holds IRIs, like the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from broker.ld.termmap import TermMap
from broker.query.common import DEFAULT_LIMITS, BooleanParser, Limits, check_length, expand_name

PARAM: Final = "type"

_NAME = re.compile(r"[^,|;()*\s]+")


@dataclass(frozen=True, slots=True)
class TypeName:
    iri: str


@dataclass(frozen=True, slots=True)
class TypeAnd:
    terms: tuple[TypeExpr, ...]


@dataclass(frozen=True, slots=True)
class TypeOr:
    terms: tuple[TypeExpr, ...]


@dataclass(frozen=True, slots=True)
class AllTypes:
    """`*`: every entity matches."""


TypeExpr = TypeName | TypeAnd | TypeOr | AllTypes


class _Parser(BooleanParser[TypeExpr]):
    param = PARAM
    and_node = TypeAnd
    or_node = TypeOr

    def __init__(self, text: str, tm: TermMap, limits: Limits) -> None:
        super().__init__(text, limits)
        self.tm = tm

    def atom(self) -> TypeExpr:
        if self.peek() == "*":
            self.fail("'*' (all types) cannot be combined with other types")
        found = _NAME.match(self.text, self.pos)
        if not found:
            self.fail("expected an entity type name")
        self.count_term()
        self.pos = found.end()
        return TypeName(expand_name(self.tm, found.group(), PARAM, self.text, found.start()))


def parse_types(text: str, tm: TermMap, *, limits: Limits = DEFAULT_LIMITS) -> TypeExpr:
    """Parse an entity type selection; BadRequestData quotes the offending fragment."""
    check_length(PARAM, text, limits)
    if text == "*":
        return AllTypes()
    return _Parser(text, tm, limits).parse()


def matches_types(types: list[str] | str, expr: TypeExpr) -> bool:
    """Whether an entity with these (expanded) types is selected by `expr`."""
    have = {types} if isinstance(types, str) else set(types)
    return _holds(have, expr)


def _holds(have: set[str], expr: TypeExpr) -> bool:
    if isinstance(expr, AllTypes):
        return True
    if isinstance(expr, TypeName):
        return expr.iri in have
    if isinstance(expr, TypeAnd):
        return all(_holds(have, term) for term in expr.terms)
    return any(_holds(have, term) for term in expr.terms)


def format_types(expr: TypeExpr, tm: TermMap) -> str:
    """The selection string of an AST (AND groups in parentheses, as the clause writes them)."""
    if isinstance(expr, AllTypes):
        return "*"
    if isinstance(expr, TypeName):
        return tm.compact_iri(expr.iri)
    if isinstance(expr, TypeAnd):
        inner = ";".join(
            f"({format_types(t, tm)})" if isinstance(t, TypeOr) else format_types(t, tm) for t in expr.terms
        )
        return f"({inner})"
    return ",".join(format_types(t, tm) for t in expr.terms)
