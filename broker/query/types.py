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
from typing import Any, Final, NoReturn

from broker.ld.termmap import TermMap
from broker.query.common import DEFAULT_LIMITS, Limits, check_length, expand_name, syntax_error, too_deep, too_many

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


class _Parser:
    def __init__(self, text: str, tm: TermMap, limits: Limits) -> None:
        self.text, self.pos, self.tm, self.limits, self.count = text, 0, tm, limits, 0

    def fail(self, message: str) -> NoReturn:
        syntax_error(PARAM, self.text, self.pos, message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def alternatives(self, depth: int) -> TypeExpr:
        parts = [self.conjunction(depth)]
        while self.peek() in (",", "|"):
            self.pos += 1
            parts.append(self.conjunction(depth))
        return _combine(TypeOr, parts)

    def conjunction(self, depth: int) -> TypeExpr:
        parts = [self.factor(depth)]
        while self.peek() == ";":
            self.pos += 1
            parts.append(self.factor(depth))
        return _combine(TypeAnd, parts)

    def factor(self, depth: int) -> TypeExpr:
        if self.peek() == "(":
            if depth + 1 > self.limits.max_depth:
                too_deep(PARAM, self.text, self.pos, self.limits)
            self.pos += 1
            node = self.alternatives(depth + 1)
            if self.peek() != ")":
                self.fail("expected ')' to close the parenthesis")
            self.pos += 1
            return node
        if self.peek() == "*":
            self.fail("'*' (all types) cannot be combined with other types")
        found = _NAME.match(self.text, self.pos)
        if not found:
            self.fail("expected an entity type name")
        self.count += 1
        if self.count > self.limits.max_terms:
            too_many(PARAM, self.count, self.limits)
        self.pos = found.end()
        return TypeName(expand_name(self.tm, found.group(), PARAM, self.text, found.start()))


def _combine(kind: Any, parts: list[TypeExpr]) -> TypeExpr:
    if len(parts) == 1:
        return parts[0]
    flat: list[TypeExpr] = []
    for part in parts:
        flat.extend(part.terms if isinstance(part, kind) else (part,))
    result: TypeExpr = kind(tuple(flat))
    return result


def parse_types(text: str, tm: TermMap, *, limits: Limits = DEFAULT_LIMITS) -> TypeExpr:
    """Parse an entity type selection; BadRequestData quotes the offending fragment."""
    check_length(PARAM, text, limits)
    if text == "*":
        return AllTypes()
    parser = _Parser(text, tm, limits)
    node = parser.alternatives(0)
    if parser.pos != len(text):
        parser.fail("unbalanced ')'" if parser.peek() == ")" else "unexpected character")
    return node


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
