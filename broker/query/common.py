"""What every query language of the broker shares: complexity bounds, error messages, name expansion.

All the query languages (q, type selection, scopeQ, geo-query, pick/omit, orderBy) arrive as already
percent-decoded strings. A malformed string is the client's data being wrong, so it is BadRequestData (clause
6.3.5 lists BadRequestData for a query that does not follow the grammar); a well-formed query that exceeds the
bounds below is TooComplexQuery (403), so a client can tell "fix your syntax" from "ask for less".
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Final, NoReturn

from broker.core.errors import BadRequestData, TooComplexQuery
from broker.ld.termmap import TermMap

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
