"""Scope queries, scopeQ (clause 4.19): `/A/B` exactly, `/A/#` that scope and all below, `/A/+/C` any one
level, `/#` any scope; `;` is AND, `,` and `|` are OR (`;` binds tighter), parentheses group.

An entity matches a scope pattern when ANY of its scopes does; an entity without scopes matches no pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from broker.query.common import DEFAULT_LIMITS, BooleanParser, Limits, check_length

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


class _Parser(BooleanParser[ScopeExpr]):
    param = PARAM
    and_node = ScopeAnd
    or_node = ScopeOr

    def atom(self) -> ScopeExpr:
        return self.pattern()

    def pattern(self) -> ScopePattern:
        start = self.pos
        found = _SCOPE.match(self.text, self.pos)
        if not found:
            self.fail("expected a scope starting with '/'")
        self.count_term()
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


def parse_scope_query(text: str, *, limits: Limits = DEFAULT_LIMITS) -> ScopeExpr:
    """Parse a scopeQ string; BadRequestData quotes the offending fragment."""
    check_length(PARAM, text, limits)
    return _Parser(text, limits).parse()


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
