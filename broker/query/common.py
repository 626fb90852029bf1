"""What every query language of the broker shares: complexity bounds, error messages, name expansion.

All the query languages (q, type selection, scopeQ, geo-query, pick/omit, orderBy) arrive as already
percent-decoded strings. A malformed string is the client's data being wrong, so it is BadRequestData (clause
6.3.5 lists BadRequestData for a query that does not follow the grammar); a well-formed query that exceeds the
bounds below is TooComplexQuery (403), so a client can tell "fix your syntax" from "ask for less".
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, NoReturn, TypeVar

from broker.core.errors import BadRequestData, TooComplexQuery
from broker.ld.termmap import TermMap

E = TypeVar("E")

#: At most this many terms (leaf conditions, value-list items, type names, scopes) in one query string.
MAX_TERMS: Final = 100
#: At most this many nested parentheses / linked-entity braces.
MAX_DEPTH: Final = 20
#: At most this many characters in one query string.
MAX_LENGTH: Final = 8192
#: At most this many characters in the coordinates of a geo-query (polygons of real places are long).
MAX_COORDINATES_LENGTH: Final = 262_144
#: At most this many characters in one regular expression of q (a bound on the regex engine's work).
MAX_REGEX: Final = 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """The complexity bounds a parser enforces; the defaults are the module constants."""

    max_terms: int = MAX_TERMS
    max_depth: int = MAX_DEPTH
    max_length: int = MAX_LENGTH
    max_regex: int = MAX_REGEX
    max_coordinates_length: int = MAX_COORDINATES_LENGTH


DEFAULT_LIMITS: Final = Limits()

_FRAGMENT = 24


def fragment(text: str, pos: int) -> str:
    """The part of `text` from `pos`, shortened, for an error message (`<end>` when nothing is left)."""
    rest = text[pos : pos + _FRAGMENT]
    if not rest:
        return "<end>"
    return rest + ("..." if len(text) > pos + _FRAGMENT else "")


def syntax_error(param: str, text: str, pos: int, message: str) -> NoReturn:
    """Raise BadRequestData quoting the parameter, the position and the offending fragment."""
    raise BadRequestData(f"{param}: {message} at position {pos} ({fragment(text, pos)!r}) in {text!r}")


def check_length(param: str, text: str, limits: Limits, bound: int | None = None) -> None:
    """Refuse empty strings (BadRequestData) and strings over the length bound (TooComplexQuery)."""
    if not text:
        raise BadRequestData(f"{param}: the value is empty")
    maximum = limits.max_length if bound is None else bound
    if len(text) > maximum:
        raise TooComplexQuery(f"{param}: {len(text)} characters, more than the {maximum} allowed")


def too_deep(param: str, text: str, pos: int, limits: Limits) -> NoReturn:
    raise TooComplexQuery(
        f"{param}: nesting deeper than {limits.max_depth} levels at position {pos} ({fragment(text, pos)!r})"
    )


def too_many(param: str, count: int, limits: Limits) -> NoReturn:
    raise TooComplexQuery(f"{param}: {count} terms, more than the {limits.max_terms} allowed")


def expand_name(tm: TermMap, name: str, param: str, text: str | None = None, pos: int = 0) -> str:
    """Expand an attribute or type name with the request's @context; keywords are not names.

    With `text`, the error quotes the query string and the position of the name in it.
    """
    try:
        iri = tm.expand_term(name)
    except BadRequestData as exc:
        reason = exc.detail
    else:
        if not iri.startswith("@"):
            return iri
        reason = f"{name!r} is a JSON-LD keyword, not an attribute or type name"
    if text is None:
        raise BadRequestData(f"{param}: {reason}")
    syntax_error(param, text, pos, reason)


def compile_regex(pattern: str, param: str, limits: Limits) -> re.Pattern[str]:
    """Compile a client's regular expression (Python `re` syntax), refusing invalid or over-long ones.

    Warnings the `re` module emits for dubious patterns (nested sets, ...) are not the client's errors: they are
    silenced so they cannot surface as server errors where warnings are turned into exceptions.
    """
    if len(pattern) > limits.max_regex:
        raise TooComplexQuery(f"{param}: a regular expression longer than {limits.max_regex} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        raise BadRequestData(f"{param}: {pattern!r} is not a valid regular expression ({exc})") from exc


class BooleanParser(Generic[E]):
    """The grammar that type selection and scope queries share (clauses 4.17, 4.19):

        Or     = And *(("," / "|") And)
        And    = Factor *(";" Factor)          ; ";" binds tighter
        Factor = "(" Or ")" / Atom

    Subclasses give the parameter name, the AND/OR node classes and `atom()`.
    """

    param: str
    and_node: Callable[[tuple[E, ...]], E]
    or_node: Callable[[tuple[E, ...]], E]

    def __init__(self, text: str, limits: Limits) -> None:
        self.text, self.pos, self.limits, self.count = text, 0, limits, 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        syntax_error(self.param, self.text, self.pos if pos is None else pos, message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def count_term(self) -> None:
        self.count += 1
        if self.count > self.limits.max_terms:
            too_many(self.param, self.count, self.limits)

    def parse(self) -> E:
        node = self.alternatives(0)
        if self.pos != len(self.text):
            self.fail("unbalanced ')'" if self.peek() == ")" else "unexpected character")
        return node

    def alternatives(self, depth: int) -> E:
        parts = [self.conjunction(depth)]
        while self.peek() in (",", "|"):
            self.pos += 1
            parts.append(self.conjunction(depth))
        return self._combine(self.or_node, parts)

    def conjunction(self, depth: int) -> E:
        parts = [self.factor(depth)]
        while self.peek() == ";":
            self.pos += 1
            parts.append(self.factor(depth))
        return self._combine(self.and_node, parts)

    def factor(self, depth: int) -> E:
        if self.peek() != "(":
            return self.atom()
        if depth + 1 > self.limits.max_depth:
            too_deep(self.param, self.text, self.pos, self.limits)
        self.pos += 1
        node = self.alternatives(depth + 1)
        if self.peek() != ")":
            self.fail("expected ')' to close the parenthesis")
        self.pos += 1
        return node

    def atom(self) -> E:
        raise NotImplementedError

    @staticmethod
    def _combine(kind: Callable[[tuple[E, ...]], E], parts: list[E]) -> E:
        """One node, or a flat AND/OR node: nested nodes of the same kind are merged into it."""
        if len(parts) == 1:
            return parts[0]
        flat: list[E] = []
        for part in parts:
            flat.extend(part.terms if type(part) is kind else (part,))  # type: ignore[attr-defined]
        return kind(tuple(flat))
