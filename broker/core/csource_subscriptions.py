"""Context source registration subscriptions (clauses 5.11, 5.12; HTTP binding 6.12, 6.13).

They are Subscriptions (clause 5.11.2.3: "conforming to the Subscription data type as mandated by clause 5.2.12"):
validated, stored, retrieved, updated and deleted by the operations of broker.core.subscriptions over their own
records, with two more members: temporalQ and csf. What they match is registrations, not entities: each
EntitySelector with the subscription's q, geoQ, scopeQ and csf becomes a query of registrations that
broker.core.registrations.selects answers as Query Context Source Registrations does (clause 5.12), with the
attribute names of watchedAttributes and notification.attributes (decision record 0170).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from broker.core.access import View as AccessView
from broker.core.caller import Caller
from broker.core.errors import BadRequestData
from broker.core.normalize import check_datetime
from broker.core.registrations import Registration, TimeFilter, compile_registration, rendered, selects
from broker.core.subscriptions import Compiled, Subscriptions, compile_subscription
from broker.ld.termmap import TermMap
from broker.query import Query, parse_query
from broker.store.base import RegistrationRecord, SubscriptionRecord

_TEMPORAL_Q: Final = frozenset({"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"})
_TIME_PROPERTIES: Final = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
NOTIFICATION_TYPE: Final = "CsourceNotification"


def time_filter(values: Mapping[str, Any], prefix: str = "") -> TimeFilter:
    """timerel, timeAt, endTimeAt and timeproperty (clause 5.2.21, and the URL parameters of 6.8.3.2), each
    checked; `prefix` is what the errors name them under ("temporalQ." in a subscription)."""
    rel = values.get("timerel")
    if rel not in ("before", "after", "between"):
        raise BadRequestData(f"{prefix}timerel must be before, after or between, not {rel!r}")
    if "timeAt" not in values:
        raise BadRequestData(f"{prefix}timeAt is mandatory with {prefix}timerel")
    at = check_datetime(values["timeAt"], f"{prefix}timeAt")
    end = None
    if rel == "between":
        if "endTimeAt" not in values:
            raise BadRequestData(f"{prefix}endTimeAt is mandatory when {prefix}timerel is between")
        end = check_datetime(values["endTimeAt"], f"{prefix}endTimeAt")
    prop = values.get("timeproperty", "observedAt")
    if prop not in _TIME_PROPERTIES:
        raise BadRequestData(f"{prefix}timeproperty must be one of {', '.join(_TIME_PROPERTIES)}, not {prop!r}")
    return TimeFilter(rel, at, end, prop)


def temporal_filter(value: Any) -> TimeFilter:
    """temporalQ (TemporalQuery, clause 5.2.21), each member checked and named in the error."""
    if not isinstance(value, dict):
        raise BadRequestData("temporalQ must be a JSON object")
    unknown = sorted(set(value) - _TEMPORAL_Q)
    if unknown:
        raise BadRequestData(f"temporalQ: unknown member(s) {', '.join(unknown)}")
    last = value.get("lastN")
    if last is not None and (not isinstance(last, int) or isinstance(last, bool) or last < 1):
        raise BadRequestData("temporalQ.lastN must be a positive integer")
    return time_filter(value, "temporalQ.")


def check_csource(doc: Mapping[str, Any], tm: TermMap) -> None:
    """What a context source registration subscription asks beyond an entity subscription (called by
    broker.core.subscriptions.validated): its temporalQ and csf compile, and notifications carry registrations,
    which have no GeoJSON form."""
    compile_csource(doc, tm)
    if doc["notification"]["endpoint"].get("accept") == "application/geo+json":
        raise BadRequestData(
            "notification.endpoint.accept: a CsourceNotification carries registrations, which have no GeoJSON form; "
            "use application/json or application/ld+json"
        )


@dataclass(frozen=True)
class CsourceMatch:
    """A subscription compiled for matching registrations: one registration query per EntitySelector (one without
    any when there are none), the attribute names asked (None: any), the temporal query."""

    sub: Compiled
    queries: tuple[Query, ...]
    attrs: frozenset[str] | None
    when: TimeFilter | None
    sys_attrs: bool


def compile_csource(doc: Mapping[str, Any], tm: TermMap, tenant: str = "") -> CsourceMatch:
    sub = compile_subscription(tenant, doc, tm)
    csf = parse_query({"csf": doc["csf"]}, tm).csf if "csf" in doc else None
    base = replace(sub.query, csf=csf)
    queries = tuple(
        replace(base, types=s.types, ids=frozenset({s.id}) if s.id else None, id_pattern=s.id_pattern)
        for s in sub.selectors
    )
    # Clause 5.12: "the combination of the watchedAttributes and the attributes in the NotificationParams element
    # are used as the specified attribute identifiers"; none at all asks for every attribute (record 0170).
    names = set(sub.watched or ())
    names |= {tm.expand_term(n) for n in doc["notification"].get("attributes", ())}
    when = temporal_filter(doc["temporalQ"]) if "temporalQ" in doc else None
    sys_attrs = bool(doc["notification"].get("sysAttrs", False))
    return CsourceMatch(sub, queries or (base,), frozenset(names) if names else None, when, sys_attrs)


def matches(match: CsourceMatch, reg: Registration) -> bool:
    return _datasets_meet(match, reg) and any(selects(reg, q, match.attrs, match.when) for q in match.queries)


def _datasets_meet(match: CsourceMatch, reg: Registration) -> bool:
    """Clause 5.12: with a datasetId on both sides, "at least one value in common"; on one side only, a match."""
    wanted, offered = match.sub.dataset_ids, reg.doc.get("datasetId")
    if wanted is None or not offered:
        return True
    return bool({"@none" if d is None else d for d in wanted} & set(offered))


def matching_infos(match: CsourceMatch, reg: Registration) -> list[int]:
    """The positions of the RegistrationInfo elements that match on their own (clause 5.11.7: "only matching
    RegistrationInfo elements")."""
    return [i for i, info in enumerate(reg.infos) if matches(match, replace(reg, infos=(info,)))]


def notified(match: CsourceMatch, record: RegistrationRecord, tm: TermMap, *, filtered: bool) -> dict[str, Any]:
    """A registration as a CsourceNotification shows it, in the notification's terms; `filtered` keeps only its
    matching RegistrationInfo elements (decision record 0171)."""
    shown = rendered(record, tm, match.sys_attrs)
    if filtered:
        keep = matching_infos(match, compile_registration(record.tenant, record.body))
        if keep:
            shown["information"] = [shown["information"][i] for i in keep]
    return shown


class CsourceSubscriptions(Subscriptions):
    """The operations of clause 5.11 (create, retrieve, query, update, delete) over the store's records of context
    source registration subscriptions; the csource notifier (broker.notify.csource) sends what they ask."""

    csource = True

    async def _may(self, caller: Caller) -> AccessView:
        # Their notifications show registrations: whoever may not read those may not subscribe to them (record 0170).
        await super()._may(caller)
        return await self.access.require(caller, "registrations", "subscribe to context source registrations here")

    async def _create(self, tenant: str, sub_id: str, doc: dict[str, Any]) -> bool:
        return await self.store.create_csource_subscription(tenant, sub_id, doc)

    async def _replace(self, tenant: str, sub_id: str, doc: dict[str, Any]) -> bool:
        return await self.store.replace_csource_subscription(tenant, sub_id, doc)

    async def _get(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        return await self.store.get_csource_subscription(tenant, sub_id)

    async def _list(self, tenant: str) -> list[SubscriptionRecord]:
        return await self.store.list_csource_subscriptions(tenant)

    async def _delete(self, tenant: str, sub_id: str) -> bool:
        return await self.store.delete_csource_subscription(tenant, sub_id)
