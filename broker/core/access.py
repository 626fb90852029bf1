"""The policy decision point (issue 18, decision records 0220-0223): what a caller may do.

A policy is a list of rules a city administrator can read:

    {"id": "operator-water-reads", "effect": "allow", "roles": ["water-operator"], "actions": ["read", "temporal"],
     "tenants": ["water"], "types": ["WaterPipe"], "idPatterns": ["urn:ngsi-ld:WaterPipe:lyon:.*"],
     "attrs": ["pressure", "flow"], "scopes": ["/Lyon"]}

A rule names who (subjects, clients, roles, groups; an issuer), may do what (ACTIONS) on which tenants, entity
types, id patterns, attributes and scopes. Within one member the listed values are alternatives; between members
each given one must hold; a member left out holds for everything. Then (record 0220):

- the `admin` role may do everything, and no policy is read for it (the open loopback mode's anonymous caller
  has it, so the open mode costs one tuple look-up);
- any other caller may do only what an allow rule grants (default deny), and never what a deny rule refuses
  (deny wins);
- an attribute the ontology marks as personal data (ontologies/personal_data.csv) is granted only by an allow
  rule that names it in `attrs` (record 0222).

Per caller the rules that name it are compiled once into a View, cached until the policy version in the store
changes (looked at most every REFRESH_SECONDS, so another broker process's change holds within that time).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import orjson

from broker.core.caller import Caller
from broker.core.errors import BadRequestData, Forbidden
from broker.core.model import Entity
from broker.store.base import Store, WriteFn, WritePlan
from ontologies.personal_data import personal_iris

T = TypeVar("T")

ACTIONS: Final = ("read", "write", "subscribe", "temporal", "purge", "contexts", "registrations", "admin")
ADMIN_ROLE: Final = "admin"
REFRESH_SECONDS: Final = 1.0
#: Compiled views kept per process (one per distinct caller and tenant).
MAX_VIEWS: Final = 10_000
#: Rule members that hold lists of strings, as a policy document spells them.
_LISTS: Final = (
    "subjects",
    "clients",
    "roles",
    "groups",
    "actions",
    "tenants",
    "types",
    "idPatterns",
    "attrs",
    "scopes",
)
_EXPANDED: Final = ("types", "attrs")
_ID_SHAPE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Rule:
    """One rule of a policy, as stored (types and attributes expanded to IRIs)."""

    id: str
    actions: tuple[str, ...]
    effect: str = "allow"
    subjects: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    issuer: str | None = None
    tenants: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    id_patterns: tuple[str, ...] = ()
    attrs: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    description: str = ""

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "effect": self.effect, "actions": list(self.actions)}
        for name in _LISTS:
            values = getattr(self, _attr(name))
            if values and name != "actions":
                doc[name] = list(values)
        if self.issuer is not None:
            doc["issuer"] = self.issuer
        if self.description:
            doc["description"] = self.description
        return doc

    def names(self, caller: Caller) -> bool:
        """Whether the rule's who-members hold for `caller` in its tenant."""
        return (
            (not self.subjects or caller.subject in self.subjects)
            and (not self.clients or caller.client in self.clients)
            and (not self.roles or bool(set(self.roles) & set(caller.roles)))
            and (not self.groups or bool(set(self.groups) & set(caller.groups)))
            and (self.issuer is None or self.issuer == caller.issuer)
            and (not self.tenants or caller.tenant in self.tenants)
        )


def _attr(member: str) -> str:
    return "id_patterns" if member == "idPatterns" else member


def parse_rule(doc: Any, expand: Callable[[str], str]) -> Rule:
    """A Rule from a policy document, terms expanded with `expand`; BadRequestData says what is wrong."""
    if not isinstance(doc, dict):
        raise BadRequestData("a policy rule is a JSON object")
    unknown = set(doc) - {*_LISTS, "id", "effect", "issuer", "description"}
    if unknown:
        raise BadRequestData(f"unknown policy rule member(s): {', '.join(sorted(unknown))}")
    rule_id = doc.get("id")
    if not isinstance(rule_id, str) or not _ID_SHAPE.match(rule_id):
        raise BadRequestData("a policy rule needs an id of 1-128 letters, digits, '.', '_', ':' or '-'")
    lists = {_attr(name): _strings(doc, name) for name in _LISTS}
    for name in _EXPANDED:
        lists[name] = tuple(expand(term) for term in lists[name])
    _check(rule_id, doc, lists)
    return Rule(
        id=rule_id,
        effect=doc.get("effect", "allow"),
        issuer=doc.get("issuer"),
        description=doc.get("description", ""),
        **lists,
    )


def _strings(doc: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = doc.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadRequestData(f"policy rule member {name} is a list of non-empty strings")
    return tuple(value)


def _check(rule_id: str, doc: Mapping[str, Any], lists: Mapping[str, tuple[str, ...]]) -> None:
    if doc.get("effect", "allow") not in ("allow", "deny"):
        raise BadRequestData(f"rule {rule_id}: effect is allow or deny")
    if not lists["actions"] or set(lists["actions"]) - set(ACTIONS):
        raise BadRequestData(f"rule {rule_id}: actions are one or more of {', '.join(ACTIONS)}")
    for name in ("issuer", "description"):
        if name in doc and not isinstance(doc[name], str):
            raise BadRequestData(f"rule {rule_id}: {name} is a string")
    for pattern in lists["id_patterns"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise BadRequestData(f"rule {rule_id}: idPattern {pattern!r} is not a regular expression: {exc}") from exc


# -- compiled rules and views ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Compiled:
    """A rule's entity-side members, ready for per-entity checks."""

    types: frozenset[str] | None
    id_pattern: re.Pattern[str] | None
    scopes: tuple[str, ...]
    attrs: frozenset[str] | None  # None: every attribute

    @classmethod
    def of(cls, rule: Rule) -> _Compiled:
        pattern = re.compile("|".join(f"(?:{p})" for p in rule.id_patterns)) if rule.id_patterns else None
        return cls(frozenset(rule.types) or None, pattern, rule.scopes, frozenset(rule.attrs) if rule.attrs else None)

    @property
    def unconditional(self) -> bool:
        return self.types is None and self.id_pattern is None and not self.scopes and self.attrs is None

    def matches(self, entity: Mapping[str, Any]) -> bool:
        if self.types is not None and not self.types.intersection(entity.get("type", ())):
            return False
        if self.id_pattern is not None and not self.id_pattern.fullmatch(entity.get("id", "")):
            return False
        return not self.scopes or any(_in_scope(s, p) for s in entity.get("scope", ()) for p in self.scopes)


def _in_scope(scope: str, pattern: str) -> bool:
    """Scopes are hierarchical (clause 4.18): a rule for /Lyon holds for /Lyon and /Lyon/Part-Dieu."""
    base = pattern.rstrip("/#") or "/"
    return scope == base or scope.startswith(base.rstrip("/") + "/")


@dataclass
class View:
    """What one caller may do in one tenant: the allow and deny rules naming it, by action."""

    allow: dict[str, list[_Compiled]] = field(default_factory=dict)
    deny: dict[str, list[_Compiled]] = field(default_factory=dict)
    personal: frozenset[str] = frozenset()
    unrestricted: bool = False

    def may(self, action: str) -> bool:
        """Whether anything at all of `action` is granted (refused: 403 before any data is read)."""
        if self.unrestricted:
            return True
        return bool(self.allow.get(action)) and not any(d.unconditional for d in self.deny.get(action, ()))

    def require(self, action: str, what: str) -> None:
        if not self.may(action):
            raise Forbidden(f"the access policies do not let this caller {what}")

    def attrs_of(self, action: str, entity: Mapping[str, Any]) -> Callable[[str], bool] | None:
        """A test of which attributes of `entity` the caller may see or touch, None when the entity itself is
        out of its reach."""
        if self.unrestricted:
            return _everything
        allows = [r for r in self.allow.get(action, ()) if r.matches(entity)]
        denies = [r for r in self.deny.get(action, ()) if r.matches(entity)]
        if not allows or any(d.attrs is None for d in denies):
            return None
        whole = any(r.attrs is None for r in allows)
        granted = frozenset().union(*(r.attrs for r in allows if r.attrs is not None))
        denied = frozenset().union(*(d.attrs for d in denies if d.attrs is not None))
        personal = self.personal

        def allowed(attr: str) -> bool:
            return attr not in denied and (attr in granted or (whole and attr not in personal))

        return allowed

    def redact(self, entity: Entity, action: str = "read") -> Entity | None:
        """`entity` as the caller may see it (the same object when nothing is hidden), None when hidden."""
        if self.unrestricted:  # open mode and administrators: every read, so no walk over the attributes
            return entity
        allowed = self.attrs_of(action, entity)
        if allowed is None:
            return None
        attrs = entity["attrs"]
        kept = {a: v for a, v in attrs.items() if allowed(a)}
        return entity if len(kept) == len(attrs) else {**entity, "attrs": kept}

    def redact_all(self, entities: Iterable[Entity], action: str = "read") -> list[Entity]:
        if self.unrestricted:
            return list(entities)
        return [seen for e in entities if (seen := self.redact(e, action)) is not None]

    def refusal(self, old: Entity | None, new: Entity | None, action: str = "write") -> str | None:
        """Why the caller may not turn `old` into `new` (None: it may). Every attribute that changes, appears or
        goes must be within its reach, in the entity before and after (a type or scope change needs both)."""
        return self._refusal(old, new, _changed(old, new), action)

    def _refusal(self, old: Entity | None, new: Entity | None, changed: set[str], action: str) -> str | None:
        for entity in (e for e in (old, new) if e is not None):
            allowed = self.attrs_of(action, entity)
            if allowed is None:
                return f"entity {entity['id']} is out of this caller's reach for {action}"
            for attr in sorted(changed):
                if not allowed(attr):
                    return f"attribute {attr} of {entity['id']} is out of this caller's reach for {action}"
        return None

    def check_write(self, old: Entity | None, new: Entity | None, action: str = "write") -> None:
        _raise(self.refusal(old, new, action))

    def guard(self, plan: WriteFn[T], action: str = "write") -> WriteFn[T]:
        """`plan` (a Store write plan) that also refuses, before anything is written, a write out of reach."""
        if self.unrestricted:
            return plan

        def guarded(current: Mapping[str, Entity | None]) -> WritePlan[T]:
            # Plans may change the current entities in place: what each held is kept as its head and the JSON of
            # each attribute, far cheaper than a deep copy (a PATCH pays this on every request).
            before = {eid: _Before.of(e) for eid, e in current.items() if e is not None}
            out = plan(current)
            for entity_id, new in out.writes.items():
                was = before.get(entity_id)
                changed = was.changed(new) if was is not None else set(new["attrs"]) if new is not None else set()
                _raise(self._refusal(was.head if was is not None else None, new, changed, action))
            return out

        return guarded


def _raise(reason: str | None) -> None:
    if reason is not None:
        raise Forbidden(f"the access policies refuse this: {reason}")


@dataclass(frozen=True)
class _Before:
    """An entity as it was before a write plan ran: what the policies judge of it, and each attribute's JSON."""

    head: Entity
    attrs: dict[str, bytes]

    @classmethod
    def of(cls, entity: Entity) -> _Before:
        head = {"id": entity["id"], "type": list(entity["type"]), "attrs": {}}
        if "scope" in entity:
            head["scope"] = list(entity["scope"])
        return cls(head, {a: orjson.dumps(v) for a, v in entity["attrs"].items()})

    def changed(self, new: Entity | None) -> set[str]:
        after = new["attrs"] if new is not None else {}
        gone = {a for a in self.attrs if a not in after}
        return gone | {a for a, v in after.items() if self.attrs.get(a) != orjson.dumps(v)}


def _everything(_attr: str) -> bool:
    return True


def _changed(old: Entity | None, new: Entity | None) -> set[str]:
    before = old["attrs"] if old is not None else {}
    after = new["attrs"] if new is not None else {}
    return {a for a in before.keys() | after.keys() if before.get(a) != after.get(a)}


UNRESTRICTED: Final = View(unrestricted=True)


def compile_view(rules: Iterable[Rule], caller: Caller, personal: frozenset[str]) -> View:
    view = View(personal=personal)
    for rule in rules:
        if not rule.names(caller):
            continue
        compiled = _Compiled.of(rule)
        into = view.allow if rule.effect == "allow" else view.deny
        for action in rule.actions:
            into.setdefault(action, []).append(compiled)
    return view


class Access:
    """The policy decision point over one store: Views per caller, compiled once per policy version."""

    def __init__(self, store: Store, personal: frozenset[str] | None = None) -> None:
        self.store = store
        self.personal = personal_iris() if personal is None else personal
        self._rules: list[Rule] = []
        self._version: int | None = None
        self._checked = -REFRESH_SECONDS
        self._views: dict[tuple[Any, ...], View] = {}

    async def view(self, caller: Caller) -> View:
        if ADMIN_ROLE in caller.roles:
            return UNRESTRICTED
        await self._refresh()
        key = (caller.tenant, caller.subject, caller.roles, caller.client, caller.groups, caller.issuer)
        found = self._views.get(key)
        if found is None:
            if len(self._views) >= MAX_VIEWS:  # many distinct callers: start again rather than grow without bound
                self._views = {}
            found = self._views[key] = compile_view(self._rules, caller, self.personal)
        return found

    async def require(self, caller: Caller, action: str, what: str) -> View:
        view = await self.view(caller)
        view.require(action, what)
        return view

    def changed(self) -> None:
        """This process changed the policies: look at the store on the next request."""
        self._checked = -REFRESH_SECONDS

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < REFRESH_SECONDS:
            return
        version = await self.store.policies_version()
        self._checked = now
        if version != self._version:
            self._rules = [stored_rule(doc) for doc in await self.store.list_policies()]
            self._version = version
            self._views = {}


def stored_rule(doc: Mapping[str, Any]) -> Rule:
    """A rule as the store keeps it (already validated and expanded)."""
    return parse_rule(dict(doc), lambda iri: iri)
