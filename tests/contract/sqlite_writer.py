"""A writer process for the SqliteStore multi-process tests (run as a script, never imported by pytest).

Usage: `python sqlite_writer.py ack DB_URL PREFIX` writes PREFIX-000000, PREFIX-000001, ... forever and prints
each id once its write returned (= acknowledged); `python sqlite_writer.py count DB_URL N` increments the
counter entity N times, read-modify-write.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Mapping

from broker.core.model import Entity
from broker.store import open_store
from broker.store.base import DEFAULT_TENANT, Store, WriteFn, WritePlan

COUNTER = "urn:ngsi-ld:Counter:1"
TYPE = "https://example.org/Thing"


def thing(eid: str, n: int) -> Entity:
    return {"id": eid, "type": [TYPE], "attrs": {"https://example.org/n": [{"type": "Property", "value": n}]}}


def always(plan: WritePlan[None]) -> WriteFn[None]:
    return lambda _current: plan


async def ack(store: Store, prefix: str) -> None:
    for i in itertools.count():
        eid = f"{prefix}-{i:06d}"
        await store.write(DEFAULT_TENANT, [eid], always(WritePlan({eid: thing(eid, i)})))
        sys.stdout.write(eid + "\n")
        sys.stdout.flush()


def increment(current: Mapping[str, Entity | None]) -> WritePlan[None]:
    old = current[COUNTER]
    n = 0 if old is None else old["attrs"]["https://example.org/n"][0]["value"]
    return WritePlan({COUNTER: thing(COUNTER, n + 1)})


async def count(store: Store, times: int) -> None:
    for _ in range(times):
        await store.write(DEFAULT_TENANT, [COUNTER], increment)


async def main(mode: str, url: str, arg: str) -> None:
    store = open_store(url)
    await store.open()
    try:
        await (ack(store, arg) if mode == "ack" else count(store, int(arg)))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
