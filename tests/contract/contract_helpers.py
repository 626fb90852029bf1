"""Small builders shared by the store contract tests: canonical entities and the write functions core would pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from broker.core.errors import AlreadyExists, ResourceNotFound
from broker.core.model import Entity
from broker.store.base import Store, WriteFn, WritePlan

EX = "https://example.org/"
T_VEHICLE = EX + "Vehicle"
T_PARKING = EX + "OffStreetParking"
T_SENSOR = EX + "Sensor"
STAMP = "2026-01-01T00:00:00.000000Z"

# The `reopen` fixture: another store object on the same URL as `store`.
Reopen = Callable[[], Awaitable[Store]]


def entity(eid: str, *types: str, **values: Any) -> Entity:
    """A canonical entity with one default Property instance per keyword (the keyword is the IRI's last part)."""
    return {
        "id": eid,
        "type": list(types) or [T_VEHICLE],
        "createdAt": STAMP,
        "modifiedAt": STAMP,
        "attrs": {EX + name: [{"type": "Property", "value": value}] for name, value in values.items()},
    }


def put(*entities: Entity, result: Any = None) -> WriteFn[Any]:
    """Write these entities whatever the current state is (upsert)."""
    return lambda _current: WritePlan({e["id"]: e for e in entities}, result)


def delete(*ids: str) -> WriteFn[Any]:
    return lambda _current: WritePlan(dict.fromkeys(ids))


def create_only(*entities: Entity) -> WriteFn[Any]:
    """Core's create: AlreadyExists when any of them exists."""

    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        for e in entities:
            if current[e["id"]] is not None:
                raise AlreadyExists(e["id"])
        return WritePlan({e["id"]: e for e in entities})

    return plan


def replace_existing(new: Entity) -> WriteFn[Any]:
    """Core's replace: ResourceNotFound when the entity does not exist."""

    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        if current[new["id"]] is None:
            raise ResourceNotFound(new["id"])
        return WritePlan({new["id"]: new})

    return plan


class Boom(Exception):
    """Raised by write functions that fail on purpose."""


def failing_after(fn: WriteFn[Any]) -> WriteFn[Any]:
    """Runs `fn` (so its writes are computed) and then raises: nothing may be written."""

    def plan(current: Mapping[str, Entity | None]) -> WritePlan[Any]:
        fn(current)
        raise Boom("write function failed")

    return plan


async def write_entities(store: Store, tenant: str, *entities: Entity) -> None:
    await store.write(tenant, [e["id"] for e in entities], put(*entities), create_tenant=True)
