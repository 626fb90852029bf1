"""The NGSI-LD query language `q` (clause 4.9): a scanner-driven recursive-descent parser to a frozen AST.

    Query     = Factor *(("|" / ";") Factor)           ; ";" (AND) binds tighter than "|" (OR)
    Factor    = "(" Query ")" / QueryTerm
    QueryTerm = Path [Operator Value]                  ; a bare Path tests existence
    Path      = Name *("." Name) *("[" Key *("." Key) "]") ["{" Path "}"]

Why no separate tokenizer: what is a token depends on where the scanner is. Values are URIs (with `:`, `/`,
`.`), ranges `a..b`, lists `a,b`, quoted strings and regular expressions (with `(`, `|`, `;`), so the parser
scans each value with rules for that position. Attribute names, sub-attribute names and compound keys are
expanded with the request's TermMap while parsing: the AST holds IRIs, like the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, NoReturn

from broker.core.errors import BadRequestData
from broker.ld.termmap import TermMap
from broker.query.common import (
    DEFAULT_LIMITS,
    Limits,
    check_length,
    compile_regex,
    expand_name,
    syntax_error,
    too_deep,
    too_many,
)

PARAM: Final = "q"

#: Path parts after a dot that name a member of the instance instead of a sub-attribute (clause 4.9).
MEMBERS: Final = frozenset({"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt"})

EQUALITY_OPS: Final = ("==", "!=")
ORDER_OPS: Final = (">=", "<=", ">", "<")
PATTERN_OPS: Final = ("~=", "!~=")
# Longest first, so that "!~=" is not read as "!" and ">=" not as ">".
_OPERATORS: Final = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")

COMPARABLE_KINDS: Final = frozenset({"number", "string", "datetime", "date", "time"})

# An attribute name is whatever clause 4.6.2 allows in names, minus the characters q itself uses.
_NAME = re.compile(r"[^\s.\[\]{}()<>=!~;|,\"'\\\x00-\x1f\x7f]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.,]+(?:Z|[+-][0-9]{2}:?[0-9]{2})?\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?Z?\Z")
# Characters RFC 3986 never allows in a URI reference, plus the quote that starts strings.
_NOT_URI = re.compile(r'[\s"<>\\^`{}]')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_END_OF_TERM: Final = ";|)"


# -- AST -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Key:
    """One key of a compound path `[a.b]`: as written (JSON values, language tags) and expanded (Property values)."""

    term: str
    iri: str


@dataclass(frozen=True, slots=True)
class AttrPath:
    """`attr.sub.sub[key.key]` or `attr.sub.observedAt`: IRIs of the attribute and sub-attributes, then at most
    one instance member (observedAt, unitCode, datasetId, createdAt, modifiedAt) or compound keys."""

    names: tuple[str, ...]
    member: str | None = None
    keys: tuple[Key, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkedPath:
    """`rel{inner}`: `inner` evaluated on the entities the Relationship at `relationship` points to."""

    relationship: AttrPath
    inner: Path


Path = AttrPath | LinkedPath


@dataclass(frozen=True, slots=True)
class Literal:
    """One value. `kind` is number, string, datetime, date, time, boolean or uri (an unquoted word or URI).

    `value` is the parsed Python value (datetimes are timezone-aware, times are naive UTC). `expanded` is the
    value expanded with the TermMap, set for string/uri values when expansion applies (expandValues).
    """

    kind: str
    value: Any
    expanded: str | None = None


@dataclass(frozen=True, slots=True)
class Range:
    """`low..high`, inclusive at both ends; both bounds have the same comparable kind."""

    low: Literal
    high: Literal


@dataclass(frozen=True, slots=True)
class ValueList:
    """`v1,v2,...`: equal to any of them (with ==), to none of them (with !=)."""

    items: tuple[Literal, ...]


Value = Literal | Range | ValueList


@dataclass(frozen=True, slots=True)
class Exists:
    path: Path


@dataclass(frozen=True, slots=True)
class Compare:
    path: Path
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Match:
    """`path~=regex` (negate=False) or `path!~=regex`; Python `re` syntax, searched anywhere in the string."""

    path: Path
    regex: re.Pattern[str]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[QNode, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[QNode, ...]


QNode = Exists | Compare | Match | And | Or


# -- values ----------------------------------------------------------------------------------------------------
def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 DateTime as an aware datetime (UTC assumed when no offset is given), or None."""
    if not _DATETIME.match(text):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_date(text: str) -> date | None:
    if not _DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """A Time as a naive time (a trailing Z is dropped: NGSI-LD times are UTC), or None."""
    if not _TIME.match(text):
        return None
    try:
        return time.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        return None


def format_literal(lit: Literal) -> str:
    """The q spelling of a literal (the inverse of the value parser)."""
    if lit.kind == "string":
        return json.dumps(lit.value, ensure_ascii=False)
    if lit.kind == "boolean":
        return "true" if lit.value else "false"
    if lit.kind == "number":
        return repr(lit.value)
    if lit.kind == "datetime":
        return str(lit.value.astimezone(UTC).isoformat()).replace("+00:00", "Z")
    if lit.kind in ("date", "time"):
        return str(lit.value.isoformat())
    return str(lit.value)


# -- parser ----------------------------------------------------------------------------------------------------
class QParser:
    """The q parser; orderBy reuses its path rule."""

    def __init__(self, text: str, tm: TermMap, expand_values: Collection[str] | None, limits: Limits) -> None:
        self.text = text
        self.pos = 0
        self.tm = tm
        self.expand_values = expand_values
        self.limits = limits
        self.terms = 0

    # helpers
    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        syntax_error(PARAM, self.text, self.pos if pos is None else pos, message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            self.fail(f"expected {char!r} {what}")
        self.pos += 1

    def count(self, n: int = 1) -> None:
        self.terms += n
        if self.terms > self.limits.max_terms:
            too_many(PARAM, self.terms, self.limits)

    # Query / Factor
    def query(self, depth: int) -> QNode:
        alternatives = [self.conjunction(depth)]
        while self.peek() == "|":
            self.pos += 1
            alternatives.append(self.conjunction(depth))
        return _combine(Or, alternatives)

    def conjunction(self, depth: int) -> QNode:
        parts = [self.factor(depth)]
        while self.peek() == ";":
            self.pos += 1
            parts.append(self.factor(depth))
        return _combine(And, parts)

    def factor(self, depth: int) -> QNode:
        if self.peek() != "(":
            return self.term(depth)
        if depth + 1 > self.limits.max_depth:
            too_deep(PARAM, self.text, self.pos, self.limits)
        self.pos += 1
        node = self.query(depth + 1)
        self.expect(")", "to close the parenthesis")
        return node

    # QueryTerm
    def term(self, depth: int) -> QNode:
        self.count()
        path = self.path(depth)
        if self.peek() in ("", *_END_OF_TERM):
            return Exists(path)
        op = self.operator()
        if op in PATTERN_OPS:
            return Match(path, self.regex(), negate=op == "!~=")
        return Compare(path, op, self.value(op, path))

    def operator(self) -> str:
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        self.fail("expected an operator (==, !=, >, >=, <, <=, ~=, !~=) or ';', '|', ')'")

    # Path
    def name(self, what: str) -> str:
        found = _NAME.match(self.text, self.pos)
        if not found:
            self.fail(f"expected {what}")
        self.pos = found.end()
        return found.group()

    def path(self, depth: int) -> Path:
        start = self.pos
        names = [expand_name(self.tm, self.name("an attribute name"), PARAM, self.text, start)]
        member: str | None = None
        while self.peek() == ".":
            self.pos += 1
            at = self.pos
            part = self.name("a sub-attribute or member name after '.'")
            if member is not None:
                self.fail(f"nothing may follow the member {member!r}", at)
            if part in MEMBERS:
                member = part
            else:
                names.append(expand_name(self.tm, part, PARAM, self.text, at))
        keys = self.keys() if self.peek() == "[" else ()
        if keys and member is not None:
            self.fail(f"the member {member!r} has no compound keys", start)
        attr = AttrPath(tuple(names), member, keys)
        if self.peek() != "{":
            return attr
        if keys or member is not None:
            self.fail("a linked-entity path '{...}' must follow a Relationship name")
        if depth + 1 > self.limits.max_depth:
            too_deep(PARAM, self.text, self.pos, self.limits)
        self.pos += 1
        inner = self.path(depth + 1)
        self.expect("}", "to close the linked-entity path")
        return LinkedPath(attr, inner)

    def keys(self) -> tuple[Key, ...]:
        keys: list[Key] = []
        while self.peek() == "[":
            self.pos += 1
            close = self.text.find("]", self.pos)
            if close < 0:
                self.fail("expected ']' to close the compound key")
            inside = self.text[self.pos : close]
            for part in inside.split("."):
                if not part or "[" in part:
                    self.fail("expected a key name inside '[...]'")
                keys.append(Key(part, _expand_key(self.tm, part)))
            self.pos = close + 1
        return tuple(keys)

    # Values
    def value(self, op: str, path: Path) -> Value:
        start = self.pos
        raw = self.scan_value()
        items = _split_outside_quotes(raw, ",")
        if len(items) > 1:
            if op not in EQUALITY_OPS:
                self.fail(f"a value list is only allowed with == and !=, not {op}", start)
            self.count(len(items) - 1)
            literals = []
            for offset, item in items:
                if _split_outside_quotes(item, "..")[1:]:
                    self.fail("a range cannot be part of a value list", start + offset)
                literals.append(self.literal(item, start + offset, path))
            return ValueList(tuple(literals))
        bounds = _split_outside_quotes(raw, "..")
        if len(bounds) == 2 and not _is_uri_with_dots(raw):
            return self.range(op, bounds, start, path)
        if len(bounds) > 2:
            self.fail("a range has exactly two bounds", start)
        lit = self.literal(raw, start, path)
        if op in ORDER_OPS and lit.kind not in COMPARABLE_KINDS:
            self.fail(f'{op} needs a number, a "string", a DateTime, a Date or a Time', start)
        return lit

    def range(self, op: str, bounds: list[tuple[int, str]], start: int, path: Path) -> Range:
        if op not in EQUALITY_OPS:
            self.fail(f"a range is only allowed with == and !=, not {op}", start)
        low = self.literal(bounds[0][1], start + bounds[0][0], path)
        high = self.literal(bounds[1][1], start + bounds[1][0], path)
        for lit, (offset, _) in ((low, bounds[0]), (high, bounds[1])):
            if lit.kind not in COMPARABLE_KINDS:
                self.fail('a range bound must be a number, a "string", a DateTime, a Date or a Time', start + offset)
        if low.kind != high.kind:
            self.fail(f"the bounds of a range must be of one kind, not {low.kind} and {high.kind}", start)
        return Range(low, high)

    def scan_value(self) -> str:
        """The raw text of a value: up to an unquoted ';', '|' or ')' (or the end)."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in _END_OF_TERM:
            if text[self.pos] == '"':
                self.pos = _skip_quoted(text, self.pos)
                if self.pos < 0:
                    self.fail("unterminated quoted string", start)
            else:
                self.pos += 1
        if self.pos == start:
            self.fail("expected a value")
        return text[start : self.pos]

    def literal(self, raw: str, pos: int, path: Path) -> Literal:
        if not raw:
            self.fail("empty value", pos)
        if raw.startswith('"'):
            return self.quoted(raw, pos, path)
        if raw in ("true", "false"):
            return Literal("boolean", raw == "true")
        if _NUMBER.match(raw):
            number = float(raw) if any(c in raw for c in ".eE") else int(raw)
            return Literal("number", number)
        for kind, parser in (("datetime", parse_datetime), ("date", parse_date), ("time", parse_time)):
            parsed = parser(raw)
            if parsed is not None:
                return Literal(kind, parsed)
        if raw[0].isdigit() and (_DATE.match(raw[:10]) or _TIME.match(raw)):
            self.fail(f"{raw!r} is not a valid Date, DateTime or Time", pos)
        if raw[0] in "=<>!~" or _NOT_URI.search(raw):
            self.fail(f'{raw!r} is not a valid value (a number, "string", DateTime, true/false or URI)', pos)
        return Literal("uri", raw, self.expansion(raw, path))

    def quoted(self, raw: str, pos: int, path: Path) -> Literal:
        if _skip_quoted(raw, 0) != len(raw):
            self.fail("unexpected text after the closing quote", pos)
        try:
            text = json.loads(raw, strict=False)
        except ValueError:
            self.fail("invalid escape in a quoted string", pos)
        return Literal("string", text, self.expansion(text, path))

    def expansion(self, value: str, path: Path) -> str | None:
        """The value expanded as a vocab term, when expandValues (or its absence) says so for this attribute."""
        if self.expand_values is not None and _first_name(path) not in self.expand_values:
            return None
        return _expand_key(self.tm, value) if value else None

    def regex(self) -> re.Pattern[str]:
        start = self.pos
        if self.peek() == '"':
            end = _skip_quoted(self.text, self.pos)
            if end < 0:
                self.fail("unterminated quoted regular expression")
            try:
                pattern = json.loads(self.text[start:end], strict=False)
            except ValueError:
                self.fail("invalid escape in a quoted regular expression")
            self.pos = end
        else:
            self.pos = _scan_regex(self.text, self.pos)
            pattern = self.text[start : self.pos]
        if not pattern:
            self.fail("expected a regular expression", start)
        try:
            return compile_regex(pattern, PARAM, self.limits)
        except BadRequestData as exc:
            self.fail(exc.detail.removeprefix(f"{PARAM}: "), start)


def _combine(kind: type[And] | type[Or], parts: list[QNode]) -> QNode:
    """One node for `parts`; nested nodes of the same kind (from parentheses) are flattened."""
    if len(parts) == 1:
        return parts[0]
    flat: list[QNode] = []
    for part in parts:
        flat.extend(part.terms if isinstance(part, kind) else (part,))
    return kind(tuple(flat))


def _expand_key(tm: TermMap, key: str) -> str:
    try:
        return tm.expand_term(key)
    except Exception:  # a term mapped to null (or anything odd) just keeps its spelling
        return key


def _first_name(path: Path) -> str:
    while isinstance(path, LinkedPath):
        path = path.inner
    return path.names[0]


def _skip_quoted(text: str, pos: int) -> int:
    """The index after the string literal starting at `pos` (a '"'), or -1 when it is not terminated."""
    i = pos + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return -1


def _split_outside_quotes(text: str, sep: str) -> list[tuple[int, str]]:
    """Split on `sep` outside quoted strings; each part with its offset in `text`."""
    parts: list[tuple[int, str]] = []
    start = i = 0
    while i < len(text):
        if text[i] == '"':
            end = _skip_quoted(text, i)
            i = len(text) if end < 0 else end
        elif text.startswith(sep, i):
            parts.append((start, text[start:i]))
            i += len(sep)
            start = i
        else:
            i += 1
    parts.append((start, text[start:]))
    return parts


def _is_uri_with_dots(raw: str) -> bool:
    """`http://a/../b` or `urn:a..b` is a URI, not a range: range bounds never hold '/' or start with a scheme."""
    return not raw.startswith('"') and ("/" in raw or _SCHEME.match(raw) is not None)


def _scan_regex(text: str, pos: int) -> int:
    """The end of an unquoted regular expression.

    The expression ends at ';' or '|' or ')' outside its own parentheses and character classes, so that
    `a~=(x|y);b==1` reads as intended; write `(x|y)` or quote the expression for a top-level alternation.
    """
    depth = 0
    in_class = False
    i = pos
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        elif c in ";|" and depth == 0:
            break
        i += 1
    return min(i, len(text))


def parse_q(
    text: str,
    tm: TermMap,
    *,
    expand_values: Collection[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> QNode:
    """Parse a q string into its AST.

    `expand_values`: IRIs of the attributes whose string values are expanded as vocab terms (the
    expandValues parameter, already expanded); None (no parameter) expands values for every attribute, which
    the evaluator uses only against VocabProperty values, where the store holds expanded IRIs.
    Raises BadRequestData naming the offending fragment, TooComplexQuery beyond `limits`.
    """
    check_length(PARAM, text, limits)
    parser = QParser(text, tm, expand_values, limits)
    node = parser.query(0)
    if parser.pos != len(text):
        bad = text[parser.pos]
        reason = "unbalanced ')'" if bad == ")" else "unexpected character"
        syntax_error(PARAM, text, parser.pos, reason)
    return node


# -- printer ---------------------------------------------------------------------------------------------------
def format_path(path: Path, tm: TermMap) -> str:
    """The q spelling of a path, attribute IRIs compacted with `tm`."""
    if isinstance(path, LinkedPath):
        return f"{format_path(path.relationship, tm)}{{{format_path(path.inner, tm)}}}"
    text = ".".join(tm.compact_iri(name) for name in path.names)
    if path.member is not None:
        text += "." + path.member
    if path.keys:
        text += "[" + ".".join(key.term for key in path.keys) + "]"
    return text


def format_value(value: Value) -> str:
    if isinstance(value, Range):
        return f"{format_literal(value.low)}..{format_literal(value.high)}"
    if isinstance(value, ValueList):
        return ",".join(format_literal(item) for item in value.items)
    return format_literal(value)


def format_q(node: QNode, tm: TermMap) -> str:
    """The q string of an AST: parsing it again with the same TermMap gives the same AST."""
    if isinstance(node, Or):
        return "|".join(format_q(term, tm) for term in node.terms)
    if isinstance(node, And):
        return ";".join(f"({format_q(t, tm)})" if isinstance(t, Or) else format_q(t, tm) for t in node.terms)
    path = format_path(node.path, tm)
    if isinstance(node, Exists):
        return path
    if isinstance(node, Match):
        op = "!~=" if node.negate else "~="
        return f"{path}{op}{json.dumps(node.regex.pattern, ensure_ascii=False)}"
    return f"{path}{node.op}{format_value(node.value)}"


def count_terms(node: QNode) -> int:
    """How many leaf conditions a q AST holds."""
    if isinstance(node, And | Or):
        return sum(count_terms(term) for term in node.terms)
    return 1
