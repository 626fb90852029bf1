"""The Store contract (ARCHITECTURE decision 5).

A store keeps canonical entities (broker.core.model) per tenant, the @context documents the broker serves or
caches, and a durable change feed. Core operations never read-modify-write on their own: they hand the store a
pure function over the current state of the entities they touch, and the store runs it atomically, writes its
result and the matching change events in one transaction, or writes nothing at all when it raises.

    result = await store.write(tenant, ["urn:a", "urn:b"], plan)

`plan(current)` receives `{id: Entity | None}` for every requested id and returns a `WritePlan`: the new state of
each entity it changes (`None` deletes it) and any value to hand back to the caller. A backend may call `plan`
more than once (optimistic concurrency retries), so it must have no effect outside what it returns. The entities in
`current` are the plan's own copies (fresh for every call): it may change them and return them as new states,
which spares the write path a deep copy of every entity.

Backends register through the entry-point group `agora.stores` by URL scheme and declare their capabilities.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from broker.core.errors import OperationNotSupported
from broker.core.model import Entity

T = TypeVar("T")

DEFAULT_TENANT = ""
#: The cursors row that holds the store's installation number (Store.installation, record 0199).
INSTALLATION_CURSOR = "agora:installation"


@dataclass
class WritePlan(Generic[T]):
    """What a write function decided: the new state of each changed entity (None = delete) and a result."""

    writes: dict[str, Entity | None] = field(default_factory=dict)
    result: T | None = None


@dataclass(frozen=True)
class Change:
    """One entry of the change feed: the state of an entity before and after a committed write."""

    seq: int
    tenant: str
    entity_id: str
    before: Entity | None
    after: Entity | None
    at: str
    #: The X-Request-Id of the request that made the write (broker.requestid), sent on with its notifications.
    request_id: str | None = None


class SchemaTooNew(RuntimeError):
    """The store was written by a newer Agora (a schema version above the one this code knows): refused, since
    this code could misread or damage what it does not know (record 0241)."""


#: (min_lon, min_lat, max_lon, max_lat) in degrees.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class EntityFilter:
    """The part of a query a store can always answer: entity type (expanded IRIs, any of), ids, an id pattern.

    The hints below only narrow: a backend may ignore them (a superset of candidates is always right, since the
    reference evaluator decides on every candidate), but must never drop an entity that satisfies them.

    * `attr_ranges`: (attribute IRI, op, number) with op one of < <= > >= ==; each must hold for some numeric
      value of some instance of that top-level attribute.
    * `bbox`: (GeoProperty IRI, boxes): the bounding box of some instance's geometry intersects one of the boxes.
    """

    types: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    id_pattern: str | None = None
    attr_ranges: tuple[tuple[str, str, float], ...] | None = None
    bbox: tuple[str, tuple[Box, ...]] | None = None


@dataclass
class ContextRecord:
    """A JSON-LD @context the broker serves (Hosted), fetched (Cached) or made from an inline one."""

    id: str
    url: str
    kind: str  # "Hosted" | "Cached" | "ImplicitlyCreated"
    body: Any  # the whole JSON document ({"@context": ...})
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SubscriptionRecord:
    """A subscription as the store keeps it: the document clients edit, and the delivery state only the notifier
    writes. They are two records so that neither writer can overwrite what the other changed concurrently."""

    tenant: str
    id: str
    body: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification, folded into a subscription's delivery state by `record_delivery`."""

    at: str
    ok: bool


WriteFn = Callable[[Mapping[str, Entity | None]], WritePlan[T]]


# -- temporal history (clauses 4.5.7, 4.11, 5.6.11-5.6.16, 5.7.3-5.7.4) -------------------------------------------
@dataclass(frozen=True)
class TemporalInstance:
    """One recorded instance of an attribute: the canonical instance (broker.core.model) as it was, with its
    temporal members (observedAt, createdAt, modifiedAt, deletedAt for a deletion)."""

    attr: str
    instance_id: str
    body: dict[str, Any]


@dataclass
class TemporalEntityRecord:
    """A temporal entity (the entity whose history is kept): its latest types and scope, and when its history
    was created and last changed. It outlives the entity when deleted entities keep their history."""

    id: str
    type: list[str]
    created_at: str
    modified_at: str
    scope: list[str] | None = None


@dataclass(frozen=True)
class InstanceQuery:
    """Which instances to read. Times are microseconds since the epoch (broker.temporal.times); `start` is
    inclusive and `end` exclusive (clause 4.11). Instances come back oldest first by `timeproperty`; with a time
    bound, instances without that member do not match. `per_attr` keeps, per attribute, the first N instances
    (or the last N with `newest_first`: lastN, clause 5.7.3.4)."""

    attrs: frozenset[str] | None = None
    timeproperty: str = "observedAt"
    start: int | None = None
    end: int | None = None
    datasets: frozenset[str | None] | None = None
    per_attr: int | None = None
    newest_first: bool = False


@dataclass(frozen=True)
class HistoryPolicy:
    """Whether writes record history, and what deleting an entity does to its history (decision record 0070)."""

    record: bool = True
    keep_on_delete: bool = True


#: `temporal_delete_attr(..., dataset=ALL_DATASETS)`: every instance of the attribute (deleteAll=true).
ALL_DATASETS = "\x00all"

TemporalHistory = dict[str, dict[str, list[TemporalInstance]]]


# -- entity maps (clauses 5.14, 6.32, 6.34) --------------------------------------------------------------------
@dataclass
class EntityMapRecord:
    """An EntityMap as the store keeps it: the ids a query matched when the map was made, in that query's order,
    until `expires_at` (microseconds since the epoch). `extra` holds the other members (linkedMaps)."""

    id: str
    expires_at: int
    ids: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


# -- snapshots (clauses 5.16, 5.5.15, 6.36-6.38) ------------------------------------------------------------------
@dataclass
class SnapshotRecord:
    """A Snapshot as the store keeps it: its status document (`body`, the members of clause 5.2.41), the tenant
    that holds the captured entities and their history (`content`, reached with the NGSILD-Snapshot header), and
    its expiry in microseconds since the epoch (None: until deleted). Expiry is the core's to enforce."""

    tenant: str
    id: str
    content: str
    expires_at: int | None
    body: dict[str, Any]


# -- context source registrations (clauses 5.9, 5.10, 6.8, 6.9) ----------------------------------------------------
@dataclass
class RegistrationRecord:
    """A CSourceRegistration as the store keeps it: its document with names and types expanded (record 0160)."""

    tenant: str
    id: str
    body: dict[str, Any]


# -- API keys of machine clients (issue 18, decision record 0203) --------------------------------------------------
@dataclass
class ApiKeyRecord:
    """An API key as the store keeps it: the SHA-256 (hex) of its secret, never the secret."""

    id: str
    name: str
    secret_hash: str
    roles: tuple[str, ...]
    tenants: tuple[str, ...] | None  # None: every tenant
    created_at: str
    revoked_at: str | None = None


# -- access policies and the audit log (issue 18, decision records 0220, 0224) ---------------------------------
@dataclass
class AuditRecord:
    """One operation as the audit log keeps it: who, when, what, on which entities, and how it ended; never an
    attribute value."""

    at: str  # UTC, as now_iso writes it
    subject: str
    operation: str  # e.g. "GET /ngsi-ld/v1/entities/{entityId}"
    tenant: str
    status: int
    outcome: str  # "allowed" or "refused"
    entity_ids: tuple[str, ...] = ()
    client: str | None = None
    issuer: str | None = None

    def to_doc(self) -> dict[str, Any]:
        """The record as the store keeps it and the admin API shows it (members that are None left out)."""
        doc: dict[str, Any] = {
            "at": self.at,
            "subject": self.subject,
            "operation": self.operation,
            "tenant": self.tenant,
            "status": self.status,
            "outcome": self.outcome,
            "entityIds": list(self.entity_ids),
        }
        if self.client is not None:
            doc["client"] = self.client
        if self.issuer is not None:
            doc["issuer"] = self.issuer
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AuditRecord:
        return cls(
            doc["at"],
            doc["subject"],
            doc["operation"],
            doc["tenant"],
            doc["status"],
            doc["outcome"],
            tuple(doc.get("entityIds", ())),
            doc.get("client"),
            doc.get("issuer"),
        )


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit read; the newest records first."""

    since: str | None = None
    until: str | None = None
    subject: str | None = None
    tenant: str | None = None
    operation: str | None = None  # a substring of the operation
    outcome: str | None = None
    entity_id: str | None = None
    limit: int = 100
    offset: int = 0

    def admits(self, record: AuditRecord) -> bool:
        return (
            (self.since is None or record.at >= self.since)
            and (self.until is None or record.at < self.until)
            and (self.subject is None or record.subject == self.subject)
            and (self.tenant is None or record.tenant == self.tenant)
            and (self.operation is None or self.operation in record.operation)
            and (self.outcome is None or record.outcome == self.outcome)
            and (self.entity_id is None or self.entity_id in record.entity_ids)
        )


@dataclass(frozen=True)
class RegistrationChange:
    """One entry of the registration change feed: a registration's document before and after a committed create,
    replace or delete (None where it did not exist); `seq` is the registrations version the change made."""

    seq: int
    tenant: str
    id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: str


def now_micros() -> int:
    """The clock entity maps expire by: microseconds since the epoch."""
    return time.time_ns() // 1000


class Store(abc.ABC):
    """Base class of every store backend. See the module docstring for the write protocol."""

    #: Capability flags a backend declares, e.g. {"geo-pushdown", "shared"}.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    #: The exceptions by which the backend says it cannot serve now (its server unreachable, timed out, loading,
    #: busy past its timeout): the HTTP layer answers them 503 with Retry-After, not 500 (decision record 0047).
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        """Whether `exc` means the store is unavailable; a backend whose exception class also covers bugs (SQLite's
        OperationalError) narrows this to the outage it means."""
        return isinstance(exc, cls.unavailable_errors)

    #: The layout version this code reads and writes (record 0241). A backend that keeps data across restarts
    #: records the version in the store and migrates older layouts forward in `open`; one that keeps nothing
    #: (memory://) is always current.
    SCHEMA_VERSION: ClassVar[int] = 1
    #: What the last `open` migrated, one line per step (empty when the store was current): `agora migrate` says it.
    migrations_applied: Sequence[str] = ()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, create the schema, run the forward migrations (SchemaTooNew on a newer schema)."""

    async def stored_schema_version(self) -> int:
        """The layout version the store holds now (a cheap read: /ready asks it on every probe)."""
        return self.SCHEMA_VERSION

    async def ping(self) -> None:
        """Raise when the store cannot be reached; cheap (the /ready probe)."""
        await self.stored_schema_version()

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; everything acknowledged is already durable."""

    # -- tenants ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def tenant_exists(self, tenant: str) -> bool:
        """The default tenant always exists; others exist once something was created in them."""

    @abc.abstractmethod
    async def list_tenants(self) -> list[str]:
        """Every tenant that exists, the default tenant included."""

    # -- entities --------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, Entity]:
        """The entities that exist among `ids` (missing ones are left out)."""

    @abc.abstractmethod
    async def write(self, tenant: str, ids: Iterable[str], fn: WriteFn[T], *, create_tenant: bool = False) -> T | None:
        """Run `fn` atomically over the current state of `ids`, persist its writes and their change events.

        Raises NonexistentTenant when the tenant does not exist and `create_tenant` is false; then, and when `fn`
        raises, nothing is written. `fn` may only write ids it was given.
        """

    @abc.abstractmethod
    async def find_ids(self, tenant: str, flt: EntityFilter) -> list[str]:
        """Ids of the entities matching `flt`, in id order."""

    @abc.abstractmethod
    async def scan(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        """The entities matching `flt`, in id order."""

    async def scan_batches(self, tenant: str, flt: EntityFilter, size: int = 256) -> AsyncIterator[list[Entity]]:
        """The entities matching `flt`, in id order, a batch at a time, so that a query which needs only its
        first page stops reading (and decoding) there. Backends that can page their reads override this."""
        entities = await self.scan(tenant, flt)
        for start in range(0, len(entities), size):
            yield entities[start : start + size]

    # -- change feed -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Committed changes with a sequence number above `seq`, oldest first."""

    async def trim_changes(self, up_to: int) -> int:
        """Forget the changes with a sequence number up to `up_to`, which every consumer has finished with (the
        notifier's cursor): the feed would otherwise keep every state of every entity forever. The number removed;
        a backend that trims on its own may do nothing. `last_seq` is unaffected."""
        return 0

    # -- @context documents ----------------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_context(self, record: ContextRecord) -> None:
        """Insert or replace a context record (keyed by id)."""

    @abc.abstractmethod
    async def get_context(self, context_id: str) -> ContextRecord | None: ...

    @abc.abstractmethod
    async def find_context_by_url(self, url: str) -> ContextRecord | None: ...

    @abc.abstractmethod
    async def list_contexts(self) -> list[ContextRecord]: ...

    @abc.abstractmethod
    async def delete_context(self, context_id: str) -> bool:
        """True when a record was deleted."""

    # -- subscriptions (clause 5.8) and their delivery state ----------------------------------------------------
    @abc.abstractmethod
    async def create_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        """Store a new subscription with an empty delivery state; False (nothing written) when the id exists."""

    @abc.abstractmethod
    async def replace_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        """Replace the document of an existing subscription, keeping its delivery state; False when absent."""

    @abc.abstractmethod
    async def get_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None: ...

    @abc.abstractmethod
    async def list_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        """The subscriptions of one tenant in id order, or of every tenant (None) in (tenant, id) order."""

    @abc.abstractmethod
    async def delete_subscription(self, tenant: str, sub_id: str) -> bool:
        """Delete a subscription and its delivery state; True when it existed."""

    async def subscriptions_version(self) -> int | None:
        """A number that changes whenever a subscription document of any tenant is created, replaced or deleted
        (delivery states aside), by any process: the notifier reads the subscriptions again only then. None when
        the backend cannot tell cheaply: the notifier then reads them at every look at the feed."""
        return None

    @abc.abstractmethod
    async def record_delivery(self, tenant: str, sub_id: str, delivery: Delivery) -> None:
        """Atomically fold one notification outcome into the delivery state (a no-op for a deleted subscription):
        timesSent + 1, lastNotification; on success lastSuccess and status "ok"; on failure timesFailed + 1,
        lastFailure and status "failed". The subscription document is not touched."""

    async def record_deliveries(self, outcomes: Mapping[tuple[str, str], list[Delivery]]) -> None:
        """`record_delivery` for many notifications at once, in order per (tenant, subscription id); a backend may
        do it in one transaction (the notifier flushes what it delivered since its last look at the feed)."""
        for (tenant, sub_id), deliveries in outcomes.items():
            for delivery in deliveries:
                await self.record_delivery(tenant, sub_id, delivery)

    # -- durable cursors of change-feed consumers ----------------------------------------------------------------
    @abc.abstractmethod
    async def get_cursor(self, name: str) -> int | None:
        """The last change sequence number the consumer `name` has finished with; None when it never set one."""

    @abc.abstractmethod
    async def set_cursor(self, name: str, seq: int) -> None: ...

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The highest sequence number the change feed has handed out (0 for an empty feed)."""

    async def installation(self) -> int:
        """A random positive number drawn the first time it is asked for and kept in the store (a row of the
        cursors, INSTALLATION_CURSOR): what tells this installation from every other one, for the default source
        id (record 0199). Every process on one store reads the same number; memory:// draws one per process."""
        number = await self.get_cursor(INSTALLATION_CURSOR)
        if number is None:
            await self.set_cursor(INSTALLATION_CURSOR, secrets.randbits(62) + 1)
            number = await self.get_cursor(INSTALLATION_CURSOR)  # another process may have written first
        assert number is not None
        return number

    # -- temporal history ----------------------------------------------------------------------------------------
    #: Set by the application from its settings before the store is used.
    history: HistoryPolicy = HistoryPolicy()

    async def temporal_entities(self, tenant: str, flt: EntityFilter) -> list[TemporalEntityRecord]:
        """The temporal entities matching the types, ids and id pattern of `flt` (hints ignored), in id order."""
        raise _no_temporal(self)

    async def temporal_instances(self, tenant: str, ids: Iterable[str], query: InstanceQuery) -> TemporalHistory:
        """{entity id: {attribute IRI: instances oldest first}} for the given temporal entities; entities and
        attributes without a matching instance are left out."""
        raise _no_temporal(self)

    async def temporal_add(
        self,
        tenant: str,
        entity_id: str,
        head: dict[str, Any] | None,
        instances: list[TemporalInstance],
        *,
        create: bool,
        at: str | None = None,
    ) -> bool:
        """Add instances to a temporal entity; with `create`, make it first when it does not exist (True then).
        `head` holds the types (added to those it has) and scope. Raises ResourceNotFound when the temporal
        entity does not exist and `create` is false; creates the tenant as entity creation does. `at`: the time
        recorded as the temporal entity's creation or modification (now by default; a restore gives the original)."""
        raise _no_temporal(self)

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        """Delete a temporal entity and its whole history; True when it existed."""
        raise _no_temporal(self)

    async def temporal_delete_attr(self, tenant: str, entity_id: str, attr: str, dataset: str | None) -> int:
        """Delete the instances of one attribute with datasetId `dataset` (None = the default instance,
        ALL_DATASETS = all of them); the number deleted."""
        raise _no_temporal(self)

    async def temporal_replace_instance(self, tenant: str, entity_id: str, instance: TemporalInstance) -> bool:
        """Replace the body of the instance with this instance id and attribute; False when there is none."""
        raise _no_temporal(self)

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        raise _no_temporal(self)

    async def temporal_retain(self, older_than: int | None, max_count: int | None) -> int:
        """Retention: delete instances whose modifiedAt is before `older_than` (microseconds), and all but the
        newest `max_count` instances of each attribute; the number deleted. Runs in short transactions."""
        raise _no_temporal(self)

    async def temporal_numeric_buckets(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        query: InstanceQuery,
        origin: int,
        period: int,
        *,
        methods: frozenset[str] | None = None,
    ) -> list[tuple[int, int, float, float, float, float, int]] | None:
        """Optional fast path of aggregations: per period of `period` microseconds from `origin`, (period number,
        count, sum, sum of squares, min, max, distinct count) of the numeric values of one attribute's instances
        selected by `query` (its per_attr ignored). None when the backend cannot, when a selected instance is not
        a number, or when they span several datasetIds: the caller then aggregates the instances itself, which
        is the reference. With `methods`, only what those aggregation methods need has to be right (the rest may
        be 0)."""
        return None

    # -- entity maps -------------------------------------------------------------------------------------------
    # Shared by every broker process, like entities. A map whose expires_at is not after now is gone for every
    # method, whether or not it was removed yet; `purge_entity_maps` removes such maps (a backend with expiring
    # keys may do nothing there).
    async def put_entity_map(self, tenant: str, record: EntityMapRecord) -> None:
        """Store a new entity map (ids are fresh URIs: an existing record with that id is replaced)."""
        raise _no_entity_maps(self)

    async def get_entity_map(self, tenant: str, map_id: str) -> EntityMapRecord | None:
        """The whole map, or None when it does not exist or has expired."""
        raise _no_entity_maps(self)

    async def entity_map_ids(self, tenant: str, map_id: str, start: int, stop: int) -> list[str] | None:
        """The map's ids at positions start..stop-1 (fewer at its end), or None when the map is gone."""
        raise _no_entity_maps(self)

    async def set_entity_map_expiry(self, tenant: str, map_id: str, expires_at: int) -> bool:
        """Move the expiry of a live map; False when it is gone."""
        raise _no_entity_maps(self)

    async def delete_entity_map(self, tenant: str, map_id: str) -> bool:
        """True when a live map was deleted."""
        raise _no_entity_maps(self)

    async def purge_entity_maps(self) -> int:
        """Remove the expired maps of every tenant; the number removed."""
        return 0

    # -- snapshots -----------------------------------------------------------------------------------------------
    # Shared by every broker process. Records only: the captured entities live in the record's content tenant,
    # written and read through the entity and temporal methods above.
    async def create_snapshot(self, record: SnapshotRecord) -> bool:
        """Store a new snapshot record; False (nothing written) when the tenant already has one with its id."""
        raise _no_snapshots(self)

    async def get_snapshot(self, tenant: str, snapshot_id: str) -> SnapshotRecord | None:
        raise _no_snapshots(self)

    async def replace_snapshot(self, record: SnapshotRecord) -> bool:
        """Replace an existing record (same tenant and id); False when there is none."""
        raise _no_snapshots(self)

    async def list_snapshots(self, tenant: str | None = None) -> list[SnapshotRecord]:
        """The records of one tenant (None: of every tenant), by tenant and id."""
        raise _no_snapshots(self)

    async def delete_snapshot(self, tenant: str, snapshot_id: str) -> bool:
        """True when a record was deleted."""
        raise _no_snapshots(self)

    # -- context source registrations (broker.store.registration_records holds each backend's) ----------------------
    async def create_registration(self, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        """Store a new registration; False (nothing written) when the id exists in that tenant."""
        raise _no_registrations(self)

    async def replace_registration(self, tenant: str, reg_id: str, body: dict[str, Any]) -> bool:
        """Replace the document of an existing registration; False when absent."""
        raise _no_registrations(self)

    async def get_registration(self, tenant: str, reg_id: str) -> RegistrationRecord | None:
        raise _no_registrations(self)

    async def list_registrations(self, tenant: str | None = None) -> list[RegistrationRecord]:
        """The registrations of one tenant in id order, or of every tenant (None) in (tenant, id) order."""
        raise _no_registrations(self)

    async def delete_registration(self, tenant: str, reg_id: str) -> bool:
        """True when the registration existed."""
        raise _no_registrations(self)

    async def registrations_version(self) -> int:
        """A number that changes whenever any process creates, replaces or deletes a registration."""
        raise _no_registrations(self)

    # -- API keys (broker.store.apikey_records holds each backend's) ------------------------------------------------
    async def create_api_key(self, record: ApiKeyRecord) -> bool:
        """Store a new key; False (nothing written) when its id exists."""
        raise _no_api_keys(self)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        raise _no_api_keys(self)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones too, in id order."""
        raise _no_api_keys(self)

    async def revoke_api_key(self, key_id: str, at: str) -> bool:
        """Mark the key revoked at `at` (the record stays); False when absent or already revoked."""
        raise _no_api_keys(self)

    # -- access policies and audit log (broker.store.policy_records holds each backend's) ------------------------
    async def put_policy(self, doc: dict[str, Any]) -> bool:
        """Store the rule `doc` under its "id", replacing one of the same id; True when it is new."""
        raise _no_policies(self)

    async def delete_policy(self, rule_id: str) -> bool:
        raise _no_policies(self)

    async def list_policies(self) -> list[dict[str, Any]]:
        """Every rule, in id order."""
        raise _no_policies(self)

    async def policies_version(self) -> int:
        """A number that changes whenever any process puts or deletes a rule."""
        raise _no_policies(self)

    async def append_audit(self, records: list[AuditRecord]) -> None:
        """Add records to the log; records are never changed, only trimmed by age."""
        raise _no_policies(self)

    async def read_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """The records `query` admits, newest first, paged by its limit and offset."""
        raise _no_policies(self)

    async def trim_audit(self, before: str) -> int:
        """Remove the records older than `before` (the retention); how many went."""
        raise _no_policies(self)

    # -- GDPR erasure (broker.store.erasure_records holds each backend's; record 0322) ------------------------------
    async def erase_changes(self, tenant: str, ids: frozenset[str]) -> int:
        """Remove every change event of these entities from the feed (their sequence numbers stay used); how many."""
        raise _no_erasure(self)

    async def erase_entity_maps(self, tenant: str, ids: frozenset[str]) -> int:
        """Delete the entity maps that list any of these entity ids; how many."""
        raise _no_erasure(self)

    async def erase_audit(self, ids: frozenset[str]) -> int:
        """Remove the audit records that name any of these entity ids; how many."""
        raise _no_erasure(self)

    async def compact(self) -> None:
        """Make the bytes of deleted data leave the backend's files (SQLite VACUUM and WAL truncation, Redis AOF
        rewrite); a backend that keeps nothing on disk does nothing."""
        raise _no_erasure(self)

    # -- open datasets (broker.store.dataset_records holds each backend's; records 0340-0343) --------------------
    async def put_dataset(self, doc: dict[str, Any]) -> bool:
        """Store the published dataset `doc` under its "id", replacing one of the same id (its state is kept);
        True when it is new."""
        raise _no_datasets(self)

    async def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        raise _no_datasets(self)

    async def list_datasets(self) -> list[dict[str, Any]]:
        """Every published dataset, in id order."""
        raise _no_datasets(self)

    async def delete_dataset(self, dataset_id: str) -> bool:
        """Remove the dataset and its state; False when absent."""
        raise _no_datasets(self)

    async def set_dataset_state(self, dataset_id: str, state: dict[str, Any]) -> bool:
        """Record what the last regeneration found (count, coverage, when); False when the dataset is absent."""
        raise _no_datasets(self)

    async def get_dataset_state(self, dataset_id: str) -> dict[str, Any] | None:
        """The last recorded state, None when there is none (or no dataset)."""
        raise _no_datasets(self)

    async def registration_changes_since(self, seq: int, limit: int = 1000) -> list[RegistrationChange]:
        """The registration changes with a sequence number above `seq`, oldest first (each committed with its
        change: the feed of context source subscriptions, clause 5.11.7)."""
        raise _no_registrations(self)

    async def trim_registration_changes(self, up_to: int) -> int:
        """Forget the registration changes up to `up_to` (the csource notifier's cursor); the number removed."""
        return 0

    # -- context source subscriptions (broker.store.csource_records holds each backend's) --------------------------
    async def create_csource_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        """Store a new context source subscription with an empty delivery state; False when the id exists."""
        raise _no_registrations(self)

    async def replace_csource_subscription(self, tenant: str, sub_id: str, body: dict[str, Any]) -> bool:
        """Replace the document, keeping the delivery state; False when absent."""
        raise _no_registrations(self)

    async def get_csource_subscription(self, tenant: str, sub_id: str) -> SubscriptionRecord | None:
        raise _no_registrations(self)

    async def list_csource_subscriptions(self, tenant: str | None = None) -> list[SubscriptionRecord]:
        """Of one tenant in id order, or of every tenant (None) in (tenant, id) order."""
        raise _no_registrations(self)

    async def delete_csource_subscription(self, tenant: str, sub_id: str) -> bool:
        raise _no_registrations(self)

    async def record_csource_delivery(
        self, tenant: str, sub_id: str, delivery: Delivery | None, initial: str | None = None
    ) -> None:
        """Fold one notification outcome (None: none was sent) into the delivery state, as `record_delivery` does;
        `initial` (the modifiedAt of the document whose initial notification this was) is kept as `initial`."""
        raise _no_registrations(self)

    async def try_lead(self, name: str) -> bool:
        """Whether this process may run the singleton consumer `name` (the notifier). Backends shared by several
        processes override this so that exactly one process leads; a process-local store always leads."""
        return True

    def watch_contexts(self, callback: Callable[[str, str], None]) -> None:  # noqa: B027 - optional hook
        """Have `callback(context id, url)` called after any process put or deleted a context record, so that each
        process's cache of @context documents stays coherent with the store. Backends that several broker
        processes share over a network override this; a process-local store needs nothing of it."""


def _no_temporal(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no temporal history")


def _no_entity_maps(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no entity maps")


def _no_snapshots(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no snapshots")


def _no_registrations(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no context source registrations")


def _no_api_keys(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no API keys")


def _no_policies(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no access policies or audit log")


def _no_datasets(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend keeps no open datasets")


def _no_erasure(store: Store) -> Exception:
    return OperationNotSupported(f"the {type(store).__name__} backend cannot erase personal data")
