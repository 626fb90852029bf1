"""Scope queries, scopeQ (clause 4.19): `/A/B` exactly, `/A/#` that scope and all below, `/A/+/C` any one
level, `/#` any scope; `;` is AND, `,` and `|` are OR (`;` binds tighter), parentheses group.

An entity matches a scope pattern when ANY of its scopes does; an entity without scopes matches no pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from broker.query.common import DEFAULT_LIMITS, Limits, check_length, syntax_error, too_deep, too_many

PARAM: Final = "scopeQ"

_SCOPE = re.compile(r"/[^,|;()\s]*")
_SEGMENT = re.compile(r"[^/#+,|;()\s]+|[#+]")


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """A scope with wildcards: its segments, where '+' is any one segment and a final '#' any rest (or none)."""

    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    terms: tuple[ScopeExpr, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    terms: tuple[ScopeExpr, ...]


ScopeExpr = ScopePattern | ScopeAnd | ScopeOr


class _Parser:
    def __init__(self, text: str, limits: Limits) -> None:
        self.text, self.pos, self.limits, self.count = text, 0, limits, 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        syntax_error(PARAM, self.text, self.pos if pos is None else pos, message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def alternatives(self, depth: int) -> ScopeExpr:
        parts = [self.conjunction(depth)]
        while self.peek() in (",", "|"):
            self.pos += 1
            parts.append(self.conjunction(depth))
        return _combine(ScopeOr, parts)

    def conjunction(self, depth: int) -> ScopeExpr:
        parts = [self.factor(depth)]
        while self.peek() == ";":
            self.pos += 1
            parts.append(self.factor(depth))
        return _combine(ScopeAnd, parts)

    def factor(self, depth: int) -> ScopeExpr:
        if self.peek() == "(":
            if depth + 1 > self.limits.max_depth:
                too_deep(PARAM, self.text, self.pos, self.limits)
            self.pos += 1
            node = self.alternatives(depth + 1)
            if self.peek() != ")":
                self.fail("expected ')' to close the parenthesis")
            self.pos += 1
            return node
        return self.pattern()

    def pattern(self) -> ScopePattern:
        start = self.pos
        found = _SCOPE.match(self.text, self.pos)
        if not found:
            self.fail("expected a scope starting with '/'")
        self.count += 1
        if self.count > self.limits.max_terms:
            too_many(PARAM, self.count, self.limits)
        raw = found.group()
        self.pos = found.end()
        parts = raw[1:].split("/")
        for i, part in enumerate(parts):
            at = start + 1 + sum(len(p) + 1 for p in parts[:i])
            if not _SEGMENT.fullmatch(part):
                self.fail("expected a scope segment (a name, '+' or a final '#')", at)
            if part == "#" and i != len(parts) - 1:
                self.fail("'#' may only be the last segment", at)
        return ScopePattern(tuple(parts))


def _combine(kind: Any, parts: list[ScopeExpr]) -> ScopeExpr:
    if len(parts) == 1:
        return parts[0]
    flat: list[ScopeExpr] = []
    for part in parts:
        flat.extend(part.terms if isinstance(part, kind) else (part,))
    result: ScopeExpr = kind(tuple(flat))
    return result


def parse_scope_query(text: str, *, limits: Limits = DEFAULT_LIMITS) -> ScopeExpr:
    """Parse a scopeQ string; BadRequestData quotes the offending fragment."""
    check_length(PARAM, text, limits)
    parser = _Parser(text, limits)
    node = parser.alternatives(0)
    if parser.pos != len(text):
        parser.fail("unbalanced ')'" if parser.peek() == ")" else "unexpected character")
    return node


def scope_matches(scope: str, pattern: ScopePattern) -> bool:
    """Whether one concrete scope (`/A/B`) matches a pattern."""
    have = scope[1:].split("/") if scope.startswith("/") else [scope]
    want = pattern.segments
    if want and want[-1] == "#":
        want = want[:-1]
        if len(have) < len(want):
            return False
        have = have[: len(want)]
    return len(have) == len(want) and all(w in ("+", h) for w, h in zip(want, have, strict=True))


def matches_scope(scopes: list[str] | str | None, expr: ScopeExpr) -> bool:
    """Whether an entity with these scopes is selected by `expr` (no scopes: never)."""
    have = [] if scopes is None else [scopes] if isinstance(scopes, str) else list(scopes)
    return _holds(have, expr)


def _holds(have: list[str], expr: ScopeExpr) -> bool:
    if isinstance(expr, ScopePattern):
        return any(scope_matches(scope, expr) for scope in have)
    if isinstance(expr, ScopeAnd):
        return all(_holds(have, term) for term in expr.terms)
    return any(_holds(have, term) for term in expr.terms)


def format_scope_query(expr: ScopeExpr) -> str:
    if isinstance(expr, ScopePattern):
        return "/" + "/".join(expr.segments)
    if isinstance(expr, ScopeAnd):
        return ";".join(
            f"({format_scope_query(t)})" if isinstance(t, ScopeOr) else format_scope_query(t) for t in expr.terms
        )
    return ",".join(format_scope_query(t) for t in expr.terms)
