"""Projection with pick/omit (clause 4.21) and the orderBy parameter (V1.9 table 6.4.3.2-1), parsed to ASTs.

    Projection = Item *(("," / "|") Item)            ; clause 4.21: comma and pipe both mean "or"
    Item       = Name ["{" Projection "}"]           ; `rel{a,b}`: attributes a, b of the linked entities
    OrderBy    = Key *("," Key)
    Key        = Path [";" ("asc" / "desc")]          ; Path as in q (`a.b`, `a.observedAt`, `a[k]`)

`id`, `type`, `scope`, `createdAt` and `modifiedAt` in pick/omit name entity members and stay as written; other
names are attribute names, expanded with the request's TermMap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NoReturn

from broker.core.errors import BadRequestData
from broker.core.model import Entity
from broker.ld.termmap import TermMap
from broker.query.common import (
    DEFAULT_LIMITS,
    Limits,
    check_length,
    expand_name,
    syntax_error,
    too_deep,
    too_many,
)
from broker.query.q import Path, QParser

#: Names in pick/omit that address entity members rather than attributes.
ENTITY_MEMBERS: Final = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})

# An AttrName (clause 4.9) or an IRI: none of the characters the projection grammar gives a meaning to, nor those
# names (clause 4.6.2) and IRIs cannot hold (`~` and `!` can: an IRI path may have them); anything else where a
# name is expected is a syntax error (BadRequestData).
_NAME = re.compile(r"[^,|{}\s<>\"'=;()\[\]\\\x00-\x1f\x7f]+")
_OR = frozenset({",", "|"})
_ORDER_MEMBER = re.compile(r"(id|type|scope)(?=[;,]|\Z)")


@dataclass(frozen=True, slots=True)
class ProjectionItem:
    """One picked/omitted name: an entity member or attribute IRI; `linked` selects inside linked entities."""

    name: str
    linked: Projection | None = None


@dataclass(frozen=True, slots=True)
class Projection:
    items: tuple[ProjectionItem, ...]

    def names(self) -> frozenset[str]:
        return frozenset(item.name for item in self.items)


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One orderBy key: an attribute path, or (`member`) the Entity member "id", "type" or "scope"."""

    path: Path | None
    descending: bool = False
    member: str | None = None


class _ProjectionParser:
    def __init__(self, param: str, text: str, tm: TermMap, limits: Limits) -> None:
        self.param, self.text, self.pos, self.tm, self.limits, self.count = param, text, 0, tm, limits, 0

    def fail(self, message: str) -> NoReturn:
        syntax_error(self.param, self.text, self.pos, message)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def projection(self, depth: int) -> Projection:
        items = [self.item(depth)]
        while self.peek() in _OR:
            self.pos += 1
            items.append(self.item(depth))
        return Projection(tuple(items))

    def item(self, depth: int) -> ProjectionItem:
        found = _NAME.match(self.text, self.pos)
        if not found:
            self.fail("expected an attribute name")
        self.count += 1
        if self.count > self.limits.max_terms:
            too_many(self.param, self.count, self.limits)
        self.pos = found.end()
        raw = found.group()
        name = raw if raw in ENTITY_MEMBERS else expand_name(self.tm, raw, self.param, self.text, found.start())
        if self.peek() != "{":
            return ProjectionItem(name)
        if raw in ENTITY_MEMBERS:
            self.fail(f"{raw!r} is not a Relationship, it cannot select linked attributes")
        if depth + 1 > self.limits.max_depth:
            too_deep(self.param, self.text, self.pos, self.limits)
        self.pos += 1
        inner = self.projection(depth + 1)
        if self.peek() != "}":
            self.fail("expected '}' to close the linked-entity selection")
        self.pos += 1
        return ProjectionItem(name, inner)


def parse_projection(text: str, tm: TermMap, *, param: str = "pick", limits: Limits = DEFAULT_LIMITS) -> Projection:
    """Parse a pick or omit value (`param` names it in errors)."""
    check_length(param, text, limits)
    parser = _ProjectionParser(param, text, tm, limits)
    result = parser.projection(0)
    if parser.pos != len(text):
        parser.fail("unexpected character")
    return result


def check_pick_omit(pick: Projection | None, omit: Projection | None, *, attrs: bool = False) -> None:
    """Clause 4.21 with 5.7.1.3/5.7.2.3: `pick` keeps members, `omit` removes them. A member named in both asks
    for two opposite things, and `omit` beside the deprecated `attrs` (itself a pick) likewise: BadRequestData
    rather than a silent choice (decision record 0102)."""
    if omit is None:
        return
    if attrs:
        raise BadRequestData("omit cannot be used together with attrs (attrs is the deprecated form of pick)")
    if pick is not None:  # `omit=rel{a}` removes a inside linked entities, not rel: it does not clash with pick=rel
        both = sorted(pick.names() & {i.name for i in omit.items if i.linked is None})
        if both:
            raise BadRequestData(f"pick and omit both name {', '.join(both)}: a member is either kept or removed")


def parse_order_by(text: str, tm: TermMap, *, limits: Limits = DEFAULT_LIMITS) -> tuple[OrderKey, ...]:
    """Parse orderBy: comma-separated q paths, each optionally followed by `;asc` or `;desc`."""
    check_length("orderBy", text, limits)
    parser = QParser(text, tm, None, limits)
    keys: list[OrderKey] = []
    while True:
        parser.count()
        member = _ORDER_MEMBER.match(text, parser.pos)
        path: Path | None = None
        if member is not None:  # 5.7.2.3: "Entity member names ("id", "type", "scope" or an Attribute name)"
            parser.pos = member.end(1)
        else:
            path = parser.path(0)
        descending = False
        if parser.peek() == ";":
            parser.pos += 1
            for word in ("asc", "desc"):
                if text.startswith(word, parser.pos):
                    descending = word == "desc"
                    parser.pos += len(word)
                    break
            else:
                syntax_error("orderBy", text, parser.pos, "expected 'asc' or 'desc' after ';'")
        keys.append(OrderKey(path, descending, member.group(1) if member is not None else None))
        if parser.peek() != ",":
            break
        parser.pos += 1
    if parser.pos != len(text):
        syntax_error("orderBy", text, parser.pos, "expected ',' or ';asc' / ';desc'")
    return tuple(keys)


def format_projection(projection: Projection, tm: TermMap) -> str:
    parts = []
    for item in projection.items:
        name = item.name if item.name in ENTITY_MEMBERS else tm.compact_iri(item.name)
        parts.append(name if item.linked is None else f"{name}{{{format_projection(item.linked, tm)}}}")
    return ",".join(parts)


def project(entity: Entity, pick: Projection | None = None, omit: Projection | None = None) -> Entity:
    """A copy of `entity` keeping the picked members/attributes and dropping the omitted ones.

    `id` is kept unless omitted explicitly. Linked selections (`rel{a}`) keep the Relationship itself;
    projecting the linked entities is not done here (it needs entity retrieval, the caller's job).
    """
    result: Entity = {}
    picked = pick.names() if pick is not None else None
    # `omit=rel{a}` removes `a` from the entities rel links to, not rel itself (clause 4.21: the name after the
    # Relationship is "an Attribute name within the Linked Entity"): only plain items are removed here.
    omitted = frozenset(i.name for i in omit.items if i.linked is None) if omit is not None else frozenset()
    for member, value in entity.items():
        if member == "attrs":
            continue
        keep = member == "id" or picked is None or member in picked
        if keep and member not in omitted:
            result[member] = value
    attrs = entity.get("attrs", {})
    result["attrs"] = {
        iri: instances for iri, instances in attrs.items() if (picked is None or iri in picked) and iri not in omitted
    }
    return result


__all__ = [
    "ENTITY_MEMBERS",
    "OrderKey",
    "Projection",
    "ProjectionItem",
    "check_pick_omit",
    "format_projection",
    "parse_order_by",
    "parse_projection",
    "project",
]
