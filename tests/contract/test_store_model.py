"""Stateful property test: random sequences of writes applied to SqliteStore, MemoryStore and a plain dict model
must leave all three agreeing on get, find_ids, scan, tenants and the change feed after every step."""

from __future__ import annotations

import asyncio
import copy
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.core.errors import AlreadyExists, NonexistentTenant, ResourceNotFound
from broker.core.model import Entity
from broker.store.base import DEFAULT_TENANT, EntityFilter, Store, WritePlan
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore

T = TypeVar("T")

EX = "https://example.org/"
TENANTS = [DEFAULT_TENANT, "cityA"]
IDS = ["urn:ngsi-ld:E:1", "urn:ngsi-ld:E:2", "urn:ngsi-ld:E:10", "urn:ngsi-ld:F:x.y", "urn:ngsi-ld:F:Ünï"]
TYPES = [EX + "A", EX + "B", EX + "C"]
ATTRS = [EX + "speed", EX + "name", EX + "loc"]
PATTERNS = ["E:1", "^urn:ngsi-ld:F", "[0-9]$", "x\\.y", "Ü", "E:(2|10)$", ".", "zzz"]

# JSON values orjson stores faithfully: 64-bit integers, finite floats, text without lone surrogates.
text = st.text(st.characters(codec="utf-8"), max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6
)
type_lists = st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)
attr_maps = st.dictionaries(st.sampled_from(ATTRS), json_values, max_size=3)
tenants = st.sampled_from(TENANTS)
ids = st.sampled_from(IDS)
optional_sets = st.none() | st.frozensets(st.sampled_from(TYPES), max_size=3)
filters = st.builds(
    EntityFilter,
    types=optional_sets,
    ids=st.none() | st.frozensets(ids, max_size=3),
    id_pattern=st.none() | st.sampled_from(PATTERNS),
)


def make_entity(eid: str, types: list[str], attrs: Mapping[str, Any]) -> Entity:
    return {
        "id": eid,
        "type": list(types),
        "attrs": {iri: [{"type": "Property", "value": value}] for iri, value in attrs.items()},
    }


# -- the write functions core would hand the store -------------------------------------------------------------

Plan = Callable[[Mapping[str, Entity | None]], WritePlan[Any]]


def create(new: Entity) -> Plan:
    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        if current[new["id"]] is not None:
            raise AlreadyExists(new["id"])
        return WritePlan({new["id"]: new}, "created")

    return plan


def replace(new: Entity) -> Plan:
    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        if current[new["id"]] is None:
            raise ResourceNotFound(new["id"])
        return WritePlan({new["id"]: new}, "replaced")

    return plan


def update_attrs(eid: str, attrs: Mapping[str, Any]) -> Plan:
    """Merge-like: overwrite the given attributes, keep the others (mutates its own copy, as core may)."""

    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        old = current[eid]
        if old is None:
            raise ResourceNotFound(eid)
        old["attrs"].update(make_entity(eid, [], attrs)["attrs"])
        return WritePlan({eid: old}, sorted(attrs))

    return plan


def delete(eid: str) -> Plan:
    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        if current[eid] is None:
            raise ResourceNotFound(eid)
        return WritePlan({eid: None}, "deleted")

    return plan


def batch(ops: Mapping[str, Entity | None]) -> Plan:
    """Batch upsert/delete over several ids; the result reports what existed before."""
    return lambda current: WritePlan(dict(ops), sorted(eid for eid in ops if current[eid] is not None))


class Boom(Exception):
    pass


def failing(inner: Plan) -> Plan:
    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        inner(current)
        raise Boom

    return plan


# -- the model ---------------------------------------------------------------------------------------------------


@dataclass
class Model:
    """The whole contract in a few dicts."""

    tenants: set[str] = field(default_factory=lambda: {DEFAULT_TENANT})
    entities: dict[str, dict[str, Entity]] = field(default_factory=dict)
    changes: list[tuple[str, str, Entity | None, Entity | None]] = field(default_factory=list)

    def write(self, tenant: str, wanted: list[str], fn: Plan, create_tenant: bool) -> tuple[str, Any]:
        """("ok", result) or ("error", exception type): what every store must answer."""
        if tenant not in self.tenants and not create_tenant:
            return "error", NonexistentTenant
        stored = self.entities.setdefault(tenant, {})
        try:
            plan = fn({eid: copy.deepcopy(stored.get(eid)) for eid in wanted})
        except Exception as exc:
            return "error", type(exc)
        for eid, after in plan.writes.items():
            before = stored.get(eid)
            if before is None and after is None:
                continue
            self.changes.append((tenant, eid, copy.deepcopy(before), copy.deepcopy(after)))
            self.tenants.add(tenant)
            if after is None:
                del stored[eid]
            else:
                stored[eid] = copy.deepcopy(after)
        return "ok", plan.result

    def find(self, tenant: str, flt: EntityFilter) -> list[Entity]:
        import re

        def keep(e: Entity) -> bool:
            return (
                (flt.ids is None or e["id"] in flt.ids)
                and (flt.types is None or bool(set(e["type"]) & flt.types))
                and (flt.id_pattern is None or re.search(flt.id_pattern, e["id"]) is not None)
            )

        stored = self.entities.get(tenant, {})
        return [stored[eid] for eid in sorted(stored) if keep(stored[eid])]


# -- the machine ---------------------------------------------------------------------------------------------


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # One plain loop for the whole example: asyncio.Runner.run() installs a SIGINT handler and wraps a task on
        # every call, which costs more than the store operations themselves.
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="agora-store-model-"))
        self.stores: list[Store] = [SqliteStore(self.tmp / "model.db"), MemoryStore()]
        for store in self.stores:
            self.run(store.open())
        self.model = Model()

    def teardown(self) -> None:
        for store in self.stores:
            self.run(store.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def apply(self, tenant: str, wanted: list[str], fn: Plan, *, create_tenant: bool) -> None:
        expected = self.model.write(tenant, wanted, fn, create_tenant)
        for store in self.stores:
            assert self.attempt(store, tenant, wanted, fn, create_tenant) == expected, type(store).__name__

    def attempt(self, store: Store, tenant: str, wanted: list[str], fn: Plan, create_tenant: bool) -> tuple[str, Any]:
        try:
            return "ok", self.run(store.write(tenant, wanted, fn, create_tenant=create_tenant))
        except Exception as exc:
            return "error", type(exc)

    # -- rules -------------------------------------------------------------------------------------------------
    @rule(tenant=tenants, eid=ids, types=type_lists, attrs=attr_maps)
    def create_entity(self, tenant: str, eid: str, types: list[str], attrs: dict[str, Any]) -> None:
        self.apply(tenant, [eid], create(make_entity(eid, types, attrs)), create_tenant=True)

    @rule(tenant=tenants, eid=ids, types=type_lists, attrs=attr_maps)
    def replace_entity(self, tenant: str, eid: str, types: list[str], attrs: dict[str, Any]) -> None:
        self.apply(tenant, [eid], replace(make_entity(eid, types, attrs)), create_tenant=False)

    @rule(tenant=tenants, eid=ids, attrs=attr_maps)
    def update_entity_attrs(self, tenant: str, eid: str, attrs: dict[str, Any]) -> None:
        self.apply(tenant, [eid], update_attrs(eid, attrs), create_tenant=False)

    @rule(tenant=tenants, eid=ids)
    def delete_entity(self, tenant: str, eid: str) -> None:
        self.apply(tenant, [eid], delete(eid), create_tenant=False)

    @rule(
        tenant=tenants,
        ops=st.dictionaries(ids, st.none() | st.builds(lambda t, a: (t, a), type_lists, attr_maps), max_size=4),
        extra=st.lists(ids, max_size=2),
        create_tenant=st.booleans(),
    )
    def batch_write(self, tenant: str, ops: dict[str, Any], extra: list[str], create_tenant: bool) -> None:
        writes = {eid: None if op is None else make_entity(eid, *op) for eid, op in ops.items()}
        self.apply(tenant, [*extra, *writes, *extra], batch(writes), create_tenant=create_tenant)

    @rule(tenant=tenants, eids=st.lists(ids, min_size=1, max_size=3, unique=True), types=type_lists)
    def failing_batch(self, tenant: str, eids: list[str], types: list[str]) -> None:
        writes: dict[str, Entity | None] = {eid: make_entity(eid, types, {}) for eid in eids}
        writes[eids[0]] = None
        self.apply(tenant, eids, failing(batch(writes)), create_tenant=True)

    @rule(tenant=tenants, flt=filters)
    def query(self, tenant: str, flt: EntityFilter) -> None:
        self.check_filter(tenant, flt)

    # -- invariants --------------------------------------------------------------------------------------------
    def check_filter(self, tenant: str, flt: EntityFilter) -> None:
        expected = self.model.find(tenant, flt)
        for store in self.stores:
            assert self.run(store.find_ids(tenant, flt)) == [e["id"] for e in expected]
            assert self.run(store.scan(tenant, flt)) == expected

    @invariant()
    def entities_agree(self) -> None:
        for tenant in TENANTS:
            expected = self.model.entities.get(tenant, {})
            for store in self.stores:
                assert self.run(store.get(tenant, IDS)) == expected
            self.check_filter(tenant, EntityFilter())
            self.check_filter(tenant, EntityFilter(types=frozenset(TYPES[:1])))

    @invariant()
    def tenants_agree(self) -> None:
        for store in self.stores:
            assert self.run(store.list_tenants()) == sorted(self.model.tenants)

    @invariant()
    def change_feeds_agree(self) -> None:
        for store in self.stores:
            feed = self.run(store.changes_since(0, limit=100_000))
            assert [(c.tenant, c.entity_id, c.before, c.after) for c in feed] == self.model.changes
            seqs = [c.seq for c in feed]
            assert seqs == sorted(set(seqs))
            if feed:  # resuming from the middle gives the rest, `limit` at a time
                middle = feed[len(feed) // 2].seq
                assert self.run(store.changes_since(middle, limit=3)) == [c for c in feed if c.seq > middle][:3]


TestStoreModel = StoreMachine.TestCase
TestStoreModel.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,  # the first SQLite open of an example includes creating the file
    suppress_health_check=[HealthCheck.too_slow],
)
