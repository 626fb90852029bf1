"""Distributed writes (clauses 4.3.6, 5.6.x, 6.3): the parts of one write that go to context sources, sent, and
what came back, as the entity operations of broker.core use it (decision records 0191-0196).

    Federation.plan(caller, hop, operation, entity_id, types, attrs)  -> Planned | None
        None: no registration concerns this write, the operation runs locally as if federation did not exist
        (one look at the planner's in-memory index, so a tenant without registrations pays nothing more).
    Federation.send(caller, hop, parts, conflicts)                     -> Remote
        every Part sent at once through the Forwarder (record 0180); what each source did, failures with their
        ProblemDetails and NGSILD-Warning values. Nothing a source does raises.

The order is always the same (record 0193): the local part is written first; when it fails the error is the
answer and nothing is forwarded; when it succeeds the parts are forwarded and a failed source never undoes it (the
answer is then 207 and says which source failed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from broker.core.caller import Caller
from broker.core.errors import ERRORS_BASE, Conflict
from broker.core.model import Entity
from broker.core.registrations import Registration, Registrations
from broker.federation.forwarder import Forwarder, SourceError, SourceReply, registered_terms, warning
from broker.federation.writes import Operation, Routed, Routing, route_entity, route_write
from broker.ld.codec import compact_attrs, compact_entity
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import TermMap, core_termmap

BASE: Final = "/ngsi-ld/v1"
#: HTTP statuses given to a source that did not answer usefully (record 0192): 504 when it did not answer in time
#: or is cooling down after that, 502 for every other failure of the exchange.
_GATEWAY_TIMEOUT: Final = frozenset({"timeout", "cooldown"})
#: NGSILD-Warning code of a source that answered with an error (RFC 7234 5.5: 199 "Miscellaneous warning").
MISC_WARNING: Final = 199


@dataclass(frozen=True)
class Hop:
    """What a distributed operation needs of the incoming request: `local=true`, its Via header, and nothing else
    (the body sent to a source is written in the source's terms or full IRIs, records 0191 and 0470, so the
    caller's @context is not needed)."""

    local: bool = False
    via: str | None = None
    #: The incoming request's headers, for contextSourceInfo values "urn:ngsi-ld:request" (4.3.6.5, record 0189).
    headers: Mapping[str, str] | None = None


NO_HOP: Final = Hop()


@dataclass(frozen=True)
class Named:
    """A body or path that holds attribute or type names: written when it is sent, in the terms of the source's
    registered jsonldContext (clause 4.3.6.6, record 0470), else as core terms or full IRIs (record 0191)."""

    write: Callable[[TermMap], Any]


def written(value: Any, tm: TermMap) -> Any:
    """A part's body or path as one source gets it (a Named written with `tm`, anything else as it is)."""
    return value.write(tm) if isinstance(value, Named) else value


@dataclass(frozen=True)
class Part:
    """One request to one source: the attributes (expanded) it carries, and the request itself."""

    registration: Registration
    attrs: frozenset[str]
    method: str
    path: str | Named
    body: Any = None  # JSON, or a Named
    params: Mapping[str, str] | Named | None = None
    #: The @context the part's names are written in (a URL), where they are not full IRIs (record 0196).
    link: str | None = None


@dataclass(frozen=True)
class SourceFailure:
    """A part that a source did not do: the attributes concerned (empty: the whole entity), a ProblemDetails."""

    registration_id: str
    attrs: frozenset[str]
    problem: dict[str, Any]
    warning: str | None = None

    @property
    def reason(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or self.problem.get("type"))


@dataclass
class Remote:
    """What the sources did with the forwarded parts of one write."""

    done: set[str] = field(default_factory=set)
    succeeded: int = 0
    failures: list[SourceFailure] = field(default_factory=list)
    #: Whether the write had a local part (written before anything was forwarded, record 0193).
    local: bool = False
    #: NGSILD-Warning values of sources asked on the way, not for the write itself: those that failed the type
    #: look-up of a write without a type (record 0471), said even when the write succeeds (clause 6.3.17).
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return list(dict.fromkeys([*self.notes, *(f.warning for f in self.failures if f.warning)]))

    def extend(self, other: Remote) -> None:
        self.done |= other.done
        self.succeeded += other.succeeded
        self.failures.extend(other.failures)


@dataclass(frozen=True)
class Planned:
    """A write that concerns registrations: the routing and whether the target entity exists locally."""

    routing: Routing
    stored: Entity | None
    #: NGSILD-Warning values of the sources that could not be asked the entity's types (record 0471).
    warnings: tuple[str, ...] = ()


def problem(kind: str, status: int, detail: str) -> dict[str, Any]:
    return {"type": ERRORS_BASE + kind, "title": kind, "status": status, "detail": detail}


def conflict_failure(routed: Routed, operation: Operation) -> SourceFailure:
    """A proxied registration that holds the attributes but does not offer the operation (5.6.2.4: Conflict)."""
    name = operation if isinstance(operation, str) else " or ".join(sorted(operation))
    detail = f"registration {routed.registration.id} ({routed.registration.mode}) does not offer {name}"
    return SourceFailure(routed.registration.id, routed.attrs, Conflict(detail).to_problem())


def source_failure(part: Part, answer: SourceReply | SourceError) -> SourceFailure:
    reg_id = part.registration.id
    if isinstance(answer, SourceError):
        status = 504 if answer.kind in _GATEWAY_TIMEOUT else 502
        body = problem("InternalError", status, f"context source {answer.endpoint}: {answer.kind}: {answer.detail}")
        return SourceFailure(reg_id, part.attrs, body, answer.warning())
    if isinstance(answer.body, dict) and "type" in answer.body:
        body = dict(answer.body)
    else:
        body = problem("InternalError", answer.status, f"context source {answer.endpoint} answered {answer.status}")
    text = f"registration {reg_id}: {answer.status}: {body.get('detail') or body.get('title') or 'error'}"
    return SourceFailure(reg_id, part.attrs, body, warning(answer.endpoint, MISC_WARNING, text))


def partial_failures(part: Part, reply: SourceReply) -> list[SourceFailure]:
    """A 207 of a source: the notUpdated of its UpdateResult (attribute names are full IRIs, 6.3.6), or the errors
    of its BatchOperationResult."""
    body = reply.body if isinstance(reply.body, dict) else {}
    out = []
    for item in body.get("notUpdated", ()):
        if isinstance(item, dict) and isinstance(item.get("attributeName"), str):
            detail = f"context source {reply.endpoint}: {item.get('reason', 'not updated')}"
            out.append(SourceFailure(part.registration.id, frozenset({item["attributeName"]}), _p(detail)))
    for item in body.get("errors", ()):
        if isinstance(item, dict):
            error = item.get("error")
            prob = dict(error) if isinstance(error, dict) else _p(f"context source {reply.endpoint}: failed")
            out.append(SourceFailure(part.registration.id, part.attrs, prob))
    return out or [SourceFailure(part.registration.id, part.attrs, _p(f"context source {reply.endpoint}: 207"))]


def _p(detail: str) -> dict[str, Any]:
    return problem("InternalError", 502, detail)


def entity_path(entity_id: str, *rest: str) -> str:
    return "/".join([f"{BASE}/entities", quote(entity_id, safe=""), *(quote(r, safe="") for r in rest)])


_WIRE: TermMap | None = None


def wire_terms() -> TermMap:
    """The core @context's own terms and full IRIs otherwise (record 0191), built once."""
    global _WIRE
    if _WIRE is None:
        _WIRE = core_termmap().terms_or_iris()
    return _WIRE


def wire_attrs(entity: Entity, attrs: Iterable[str], tm: TermMap | None = None) -> dict[str, Any]:
    """The named attributes of a canonical entity or fragment as a normalized body in the terms of `tm`, by
    default core terms and full IRIs (record 0191)."""
    wanted = set(attrs)
    chosen = {k: v for k, v in entity["attrs"].items() if k in wanted}
    return compact_attrs(chosen, tm or wire_terms(), system=False)


def wire_instance(iri: str, instance: Mapping[str, Any], tm: TermMap | None = None) -> dict[str, Any]:
    """One attribute instance as the body of .../attrs/{attrId} (names as in `wire_attrs`)."""
    wired = compact_attrs({iri: [dict(instance)]}, tm or wire_terms(), system=False)
    return dict(next(iter(wired.values())))


def wire_entity(entity: Entity, attrs: Iterable[str], tm: TermMap | None = None) -> dict[str, Any]:
    """A whole entity (id, type, scope and the named attributes) as a normalized body (names as in `wire_attrs`)."""
    wanted = set(attrs)
    part = {**entity, "attrs": {k: v for k, v in entity["attrs"].items() if k in wanted}}
    return compact_entity(part, tm or wire_terms(), system=False)


def attr_path(entity_id: str, iri: str) -> Named:
    """.../entities/{id}/attrs/{attrId} with the attribute's name in the source's terms (its full IRI by default,
    record 0191; a term of the registration's jsonldContext, 4.3.6.6)."""
    return Named(lambda tm: entity_path(entity_id, "attrs", tm.compact_iri(iri)))


class Federation:
    """The registrations' planner index and the forwarding client, for the write operations of broker.core."""

    def __init__(
        self, registrations: Registrations, forwarder: Forwarder, resolver: ContextResolver | None = None
    ) -> None:
        self.registrations = registrations
        self.forwarder = forwarder
        #: Resolves the registrations' jsonldContext (4.3.6.6); None: names are always core terms or IRIs (tests).
        self.resolver = resolver

    async def live(self, caller: Caller, hop: Hop) -> list[Registration]:
        """The tenant's live registrations, or none with local=true (5.5.13: registrations "will not be used")."""
        if hop.local:
            return []
        return await self.registrations.live(caller.tenant)

    def plan(
        self,
        regs: Sequence[Registration],
        operation: Operation,
        entity_id: str,
        types: Sequence[str] | None,
        attrs: Iterable[str] | None,
        stored: Entity | None,
    ) -> Planned | None:
        """How one entity write is routed (`attrs` None: the entity as a whole, delete); None when locally only.
        The entity's types are the stored ones, else those the request gives, else unknown (record 0194)."""
        known = stored["type"] if stored is not None else types
        if attrs is None:
            routing = route_entity(regs, operation, entity_id, known)
        else:
            routing = route_write(regs, operation, entity_id, known, attrs)
        return Planned(routing, stored) if routing.distributed else None

    async def send(self, caller: Caller, hop: Hop, parts: Sequence[Part], conflicts: Sequence[SourceFailure]) -> Remote:
        remote = Remote(failures=list(conflicts))
        answers = await asyncio.gather(*(self._send(caller, hop, part) for part in parts))
        for answer in answers:
            remote.extend(answer)
        return remote

    async def request(self, caller: Caller, hop: Hop, part: Part) -> SourceReply | SourceError:
        """One part sent, its names written in the source's terms (record 0470); the source's answer as it is (the
        forwarder never raises for what a source does)."""
        terms = await self.terms(part.registration)
        if isinstance(terms, SourceError):
            return terms
        return await self.forwarder.send(
            part.registration,
            part.method,
            written(part.path, terms),
            caller=caller,
            params=written(part.params, terms),
            body=written(part.body, terms),
            link=part.link,
            via=hop.via,
            incoming=hop.headers,
        )

    async def terms(self, reg: Registration) -> TermMap | SourceError:
        """The terms a write to `reg` is written in: its jsonldContext's (4.3.6.6: "apply a compaction operation ...
        over both payload and query parameters"), else the core terms and full IRIs of record 0191."""
        found = None if self.resolver is None else await registered_terms(self.resolver, reg)
        return wire_terms() if found is None else found

    async def _send(self, caller: Caller, hop: Hop, part: Part) -> Remote:
        answer = await self.request(caller, hop, part)
        if isinstance(answer, SourceReply) and answer.ok and answer.status != 207:
            return Remote(done=set(part.attrs), succeeded=1)
        if isinstance(answer, SourceReply) and answer.status == 207:
            failed = partial_failures(part, answer)
            missed = set().union(*(f.attrs for f in failed))
            return Remote(done=set(part.attrs) - missed, succeeded=1, failures=failed)
        return Remote(failures=[source_failure(part, answer)])
