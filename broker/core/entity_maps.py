"""Entity maps (clauses 5.14.1-5.14.4, 5.5.9.3): the ids a query matched, frozen for consistent paging.

A query asked with entityMap=true (or GET/POST /entityMaps) selects every match once, stores their ids in the
query's order with an expiry, and names the map; later pages asked with that map (the NGSILD-EntityMap header)
read the map's entities, so entities created or deleted meanwhile never shift a page. Maps live in the store, so
every broker process sees them. Agora has no context source registrations: every id maps to "@none" (local) and
linkedMaps stays empty (decision record 0014).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from broker.core.caller import Caller
from broker.core.errors import BadRequestData, ResourceNotFound
from broker.core.normalize import check_datetime, is_uri
from broker.core.query import Page, Paging, Queries
from broker.query import Query
from broker.store.base import EntityMapRecord, Store, now_micros
from broker.temporal.times import from_micros, parse_duration, to_micros

if TYPE_CHECKING:
    from broker.federation.reads import Origin

ID_PREFIX: Final = "urn:ngsi-ld:EntityMap:"
#: Lifetime of a map when the client suggests none, and the longest the broker grants (decision record 0014).
DEFAULT_LIFETIME_S: Final = 3600
MAX_LIFETIME_S: Final = 86400
#: Expired maps are removed at most this often, on the way of creating a new one.
PURGE_INTERVAL_S: Final = 60.0
_OUTPUT_ONLY: Final = frozenset({"entityMap", "linkedMaps"})


@dataclass(frozen=True)
class MapRequest:
    """What a query says about entity maps: an existing map to page through (the NGSILD-EntityMap header), whether
    to make one (entityMap=true), and the lifetime a new one should have (entityMapLifetime)."""

    map_id: str | None = None
    wanted: bool = False
    lifetime: str | None = None

    @property
    def used(self) -> bool:
        return self.wanted or self.map_id is not None


class EntityMaps:
    def __init__(self, store: Store, queries: Queries) -> None:
        self.store = store
        self.queries = queries
        self._last_purge = 0.0

    async def create(
        self,
        caller: Caller,
        queries: list[Query],
        attrs: frozenset[str] | None,
        lifetime: str | None,
        origin: Origin | None = None,
    ) -> EntityMapRecord:
        """Create EntityMap for Query Entities (clause 5.14.4): every match, in the query's order, of the local
        store and (with `origin`) of the matching context sources, each id with where it was found (5.2.39)."""
        return (await self._create(caller, queries, attrs, lifetime, origin))[0]

    async def _create(
        self,
        caller: Caller,
        queries: list[Query],
        attrs: frozenset[str] | None,
        lifetime: str | None,
        origin: Origin | None,
    ) -> tuple[EntityMapRecord, tuple[str, ...]]:
        expires_at = expiry(lifetime)
        selection = await self.queries.select_from_sources(caller, queries, attrs, origin)
        ids = [e["id"] for e in selection.entities]
        extra = {"entityMap": selection.sources} if selection.sources else None
        return await self.store_map(caller, ids, expires_at, extra), selection.warnings

    async def store_map(
        self, caller: Caller, ids: list[str], expires_at: int, extra: dict[str, Any] | None = None
    ) -> EntityMapRecord:
        """A new map of `ids` (in that order) until `expires_at`: the maps of Query Entities, of the temporal
        queries (clause 5.14.5) and of Retrieve Entity (5.7.1.4)."""
        record = EntityMapRecord(f"{ID_PREFIX}{uuid.uuid4()}", expires_at, ids, extra or {})
        await self._purge_now_and_then()
        await self.store.put_entity_map(caller.tenant, record)
        return record

    async def for_entity(self, caller: Caller, entity_id: str, maps: MapRequest) -> str | None:
        """The map Retrieve Entity names (clause 5.7.1.4, decision record 0073): the NGSILD-EntityMap header's map
        while it exists, else (and for entityMap=true) a new map of the one entity; None when neither was asked."""
        if not maps.used:
            return None
        if maps.map_id is not None and await self.store.entity_map_ids(caller.tenant, maps.map_id, 0, 0) is not None:
            return maps.map_id
        return (await self.store_map(caller, [entity_id], expiry(maps.lifetime))).id

    async def query(
        self,
        caller: Caller,
        queries: list[Query],
        paging: Paging,
        attrs: frozenset[str] | None,
        maps: MapRequest,
        *,
        count: bool = False,
        origin: Origin | None = None,
    ) -> tuple[Page, str, bool]:
        """(page, map id, whether the map was made now) of a query that uses an entity map (clause 5.7.2.4): the
        named map when it is still there, else a new one - also when the named one is unknown or expired. With
        `origin` the map holds the matches of the context sources too (4.3.6.7), and its pages read them there."""
        if maps.map_id is not None:
            page = await self.queries.map_page(caller, maps.map_id, queries, paging, attrs, count=count, origin=origin)
            if page is not None:
                return page, maps.map_id, False
        record, warnings = await self._create(caller, queries, attrs, maps.lifetime, origin)
        page = await self.queries.map_page(caller, record.id, queries, paging, attrs, count=count, origin=origin)
        if page is None:  # expired between the two calls: only with a lifetime of microseconds
            raise ResourceNotFound(f"entity map {record.id} expired before its first page was read")
        if warnings:
            page = replace(page, warnings=tuple(dict.fromkeys(warnings + page.warnings)))
        return page, record.id, True

    async def retrieve(self, caller: Caller, map_id: str) -> EntityMapRecord:
        """Retrieve EntityMap (clause 5.14.1)."""
        record = await self.store.get_entity_map(caller.tenant, check_map_id(map_id))
        if record is None:
            raise ResourceNotFound(f"no entity map {map_id}")
        return record

    async def update(self, caller: Caller, map_id: str, fragment: Any) -> None:
        """Update EntityMap (clause 5.14.2): expiresAt is what a client may change; the output-only members are
        ignored, id and type may only repeat what they are."""
        check_map_id(map_id)
        if not isinstance(fragment, dict):
            raise BadRequestData("an EntityMap fragment is a JSON object")
        members = {k: v for k, v in fragment.items() if k not in _OUTPUT_ONLY and k != "@context"}
        if members.get("type", "EntityMap") != "EntityMap" or members.get("id", map_id) != map_id:
            raise BadRequestData("the id and type of an EntityMap cannot be changed")
        unknown = sorted(set(members) - {"id", "type", "expiresAt"})
        if unknown:
            raise BadRequestData(f"unknown member(s) of EntityMap: {', '.join(unknown)}")
        if "expiresAt" not in members:
            raise BadRequestData("an EntityMap fragment needs expiresAt, the only member a client can change")
        expires = members["expiresAt"]
        if not isinstance(expires, str):
            raise BadRequestData("expiresAt is a DateTime string")
        check_datetime(expires, "expiresAt")
        expires_at = min(to_micros(expires), now_micros() + MAX_LIFETIME_S * 1_000_000)
        if not await self.store.set_entity_map_expiry(caller.tenant, map_id, expires_at):
            raise ResourceNotFound(f"no entity map {map_id}")

    async def delete(self, caller: Caller, map_id: str) -> None:
        """Delete EntityMap (clause 5.14.3)."""
        if not await self.store.delete_entity_map(caller.tenant, check_map_id(map_id)):
            raise ResourceNotFound(f"no entity map {map_id}")

    async def _purge_now_and_then(self) -> None:
        """Remove expired maps, at most once per PURGE_INTERVAL_S per process (lazily: reads ignore them anyway)."""
        if time.monotonic() - self._last_purge >= PURGE_INTERVAL_S:
            self._last_purge = time.monotonic()
            await self.store.purge_entity_maps()


def document(record: EntityMapRecord) -> dict[str, Any]:
    """The EntityMap data type (clause 5.2.39): each id with where it was found, "@none" for the local store and
    the ids of the registrations of the sources that held it (record 0186); no linked maps (record 0014)."""
    where = record.extra.get("entityMap") or {}
    return {
        "id": record.id,
        "type": "EntityMap",
        "expiresAt": from_micros(record.expires_at),
        "entityMap": {eid: where.get(eid, ["@none"]) for eid in record.ids},
        "linkedMaps": record.extra.get("linkedMaps", {}),
    }


def check_map_id(map_id: str) -> str:
    if not is_uri(map_id):
        raise BadRequestData(f"entity map id {map_id!r} is not a valid URI")
    return map_id


def expiry(lifetime: str | None) -> int:
    """When a map made now with the suggested `lifetime` (entityMapLifetime) expires, in microseconds."""
    return now_micros() + _lifetime_micros(lifetime)


def _lifetime_micros(lifetime: str | None) -> int:
    """entityMapLifetime (an ISO 8601 duration) capped at MAX_LIFETIME_S; DEFAULT_LIFETIME_S without one."""
    if lifetime is None:
        return DEFAULT_LIFETIME_S * 1_000_000
    duration = parse_duration(lifetime, "entityMapLifetime")
    if duration.is_zero:
        raise BadRequestData("entityMapLifetime must be longer than zero")
    if duration.months:
        return MAX_LIFETIME_S * 1_000_000
    return min(duration.micros, MAX_LIFETIME_S * 1_000_000)
