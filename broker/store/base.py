"""The Store contract (ARCHITECTURE decision 5).

A store keeps canonical entities (broker.core.model) per tenant, the @context documents the broker serves or
caches, and a durable change feed. Core operations never read-modify-write on their own: they hand the store a
pure function over the current state of the entities they touch, and the store runs it atomically, writes its
result and the matching change events in one transaction, or writes nothing at all when it raises.

    result = await store.write(tenant, ["urn:a", "urn:b"], plan)

`plan(current)` receives `{id: Entity | None}` for every requested id and returns a `WritePlan`: the new state of
each entity it changes (`None` deletes it) and any value to hand back to the caller. A backend may call `plan`
more than once (optimistic concurrency retries), so it must be pure.

Backends register through the entry-point group `agora.stores` by URL scheme and declare their capabilities.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from broker.core.model import Entity

T = TypeVar("T")

DEFAULT_TENANT = ""


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


@dataclass(frozen=True)
class EntityFilter:
    """The part of a query a store can always answer: entity type (expanded IRIs, any of), ids, an id pattern."""

    types: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    id_pattern: str | None = None


@dataclass
class ContextRecord:
    """A JSON-LD @context the broker serves (Hosted), fetched (Cached) or made from an inline one."""

    id: str
    url: str
    kind: str  # "Hosted" | "Cached" | "ImplicitlyCreated"
    body: Any  # the whole JSON document ({"@context": ...})
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)


WriteFn = Callable[[Mapping[str, Entity | None]], WritePlan[T]]


class Store(abc.ABC):
    """Base class of every store backend. See the module docstring for the write protocol."""

    #: Capability flags a backend declares, e.g. {"geo-pushdown", "shared"}.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, create the schema."""

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

    # -- change feed -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Committed changes with a sequence number above `seq`, oldest first."""

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
