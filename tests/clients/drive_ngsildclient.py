"""Drives ngsildclient (Orange's NGSI-LD client, `ngsildclient` on PyPI) against a broker, unchanged: its
synchronous `Client` (requests) and its `AsyncClient` (httpx), with their clean-up helpers (delete_where, drop,
purge, subscriptions.purge, contexts.cleanup).

Runs in the client's own virtual environment (.venv-clients/ngsildclient, see the Makefile: it pins httpx 0.23,
older than Agora's): it imports nothing from Agora or its tests. Usage:
`python drive_ngsildclient.py BROKER_URL RECEIVER_URL OUT MQTT_URL` (the last unused); writes one JSON document to OUT,
{"steps": [{"name", "ok", "value" | "error"}]}, which tests/clients/test_ngsildclient.py reads step by step. A
failed step is recorded with the broker's problem details, and the drive goes on."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from ngsildclient import AsyncClient, Client, Entity, SubscriptionBuilder
from ngsildclient.api.exceptions import NgsiContextBrokerError

SUBSCRIPTION = "urn:ngsi-ld:Subscription:orange:rooms"
CONTEXT = {"@context": {"Room": "https://example.org/orange/Room", "temperature": "https://example.org/orange/t"}}
steps: list[dict[str, Any]] = []


def record(name: str, outcome: Callable[[], Any]) -> Any:
    """Run one step (or take its outcome) and record it; None when it failed."""
    try:
        value = outcome()
    except NgsiContextBrokerError as err:
        pd = err.problemdetails
        error = {"status": pd.status, "type": pd.type, "title": pd.title, "detail": pd.detail}
        steps.append({"name": name, "ok": False, "error": error})
        return None
    except Exception as err:  # the library's own exceptions (NgsiApiError, KeyError on an unexpected answer...)
        steps.append({"name": name, "ok": False, "error": {"exception": type(err).__name__, "message": str(err)}})
        return None
    steps.append({"name": name, "ok": True, "value": value})
    return value


def step(name: str, action: Callable[[], Any]) -> Any:
    return record(name, action)


async def astep(name: str, action: Callable[[], Awaitable[Any]]) -> Any:
    """An AsyncClient step: awaited here, its exception then recorded like a synchronous one's."""
    try:
        value = await action()
    except Exception as err:
        failure = err
        return record(name, lambda: _raise(failure))
    return record(name, lambda: value)


def _raise(err: Exception) -> Any:
    raise err


def summary(result: Any) -> Any:
    """A BatchResult as plain data; anything else as it is."""
    if hasattr(result, "success") and hasattr(result, "errors"):
        return {"op": result.op, "success": sorted(map(str, result.success)), "errors": result.errors}
    return result


def room(name: str, temperature: float) -> Entity:
    entity = Entity("Room", name)  # id urn:ngsi-ld:Room:<name>, @context the core context
    entity.prop("temperature", temperature, unitcode="CEL").rel("isIn", "urn:ngsi-ld:Building:orange")
    return entity.loc(52.51, 13.35)


def drive(broker_url: str, receiver_url: str) -> None:
    where = urlsplit(broker_url)
    # the constructor checks the connection and creates the tenant when the broker says it does not exist
    client = step("connect", lambda: Client(hostname=where.hostname, port=where.port, tenant="orange", verbose=False))
    if client is None:
        return
    one = room("orange-1", 21.5)
    step("create", lambda: client.create(one))
    step("create again", lambda: client.create(room("orange-1", 22.0)))
    step("exists", lambda: client.exists(one))
    step("exists absent", lambda: client.exists("urn:ngsi-ld:Room:orange-absent"))
    step("get", lambda: client.get(one).to_dict())
    step("get as dict", lambda: client.get("urn:ngsi-ld:Room:orange-1", asdict=True))
    step("get absent", lambda: client.get("urn:ngsi-ld:Room:orange-absent"))

    rooms = [room(f"orange-b{i}", 10.0 + 10 * i) for i in range(3)]
    step("batch create", lambda: summary(client.create(rooms)))
    step("batch create of existing entities", lambda: summary(client.create(rooms)))
    step("count by type", lambda: client.count(type="Room"))
    step("query by type", lambda: sorted(e.id for e in client.query(type="Room")))
    step("query with q", lambda: sorted(e.id for e in client.query(type="Room", q="temperature>=20")))
    step("query in pages of 2", lambda: sorted(e.id for e in client.query(type="Room", limit=2)))
    step("query_head", lambda: len(client.query_head(type="Room", n=2)))
    step(
        "query geo",
        lambda: sorted(
            e.id
            for e in client.query(
                type="Room", gq="georel=near;maxDistance==1000&geometry=Point&coordinates=[13.35,52.51]"
            )
        ),
    )
    step("types", lambda: client.types.list())
    # POST /entityOperations/query: the selectors by id and idPattern that the GET facade does not offer
    by_pattern = {"type": "Query", "entities": [{"idPattern": "urn:ngsi-ld:Room:orange-b.*", "type": "Room"}]}
    step("alt count by idPattern", lambda: client.alt.count(by_pattern))
    step("alt query by idPattern", lambda: sorted(e.id for e in client.alt.query(by_pattern)))
    by_id = {"type": "Query", "entities": [{"id": "urn:ngsi-ld:Room:orange-1", "type": "Room"}]}
    step("alt query by id", lambda: [e.id for e in client.alt.query(by_id)])
    with_q = {"type": "Query", "entities": [{"type": "Room"}], "q": "temperature<20"}
    step("alt query with q", lambda: [e.id for e in client.alt.query(with_q)])

    step("update", lambda: client.update(room("orange-1", 23.0)))
    step("upsert existing", lambda: client.upsert(room("orange-1", 24.0)))
    step("upsert new", lambda: client.upsert(room("orange-2", 24.0)))
    step("get after upserts", lambda: client.get("urn:ngsi-ld:Room:orange-1").to_dict())
    step("batch upsert", lambda: summary(client.upsert([room(r.id.split(":")[-1], 1.0) for r in rooms])))
    step(
        "batch upsert update",
        lambda: summary(
            client.upsert([Entity("Room", f"orange-b{i}").prop("humidity", 40 + i) for i in range(3)], update=True)
        ),
    )
    step(
        "batch update",
        lambda: summary(client.update([Entity("Room", f"orange-b{i}").prop("temperature", 2.0) for i in range(3)])),
    )
    step(
        "batch update noOverwrite",
        lambda: summary(
            client.update([Entity("Room", f"orange-b{i}").prop("temperature", 99.0) for i in range(3)], overwrite=False)
        ),
    )
    step("entities after batch", lambda: [client.get(r.id).to_dict() for r in rooms])
    step("batch delete", lambda: summary(client.delete(rooms[:1])))
    step("query after batch delete", lambda: sorted(e.id for e in client.query(type="Room")))

    subscription = (
        SubscriptionBuilder(f"{receiver_url}/orange")
        .id(SUBSCRIPTION)
        .description("rooms above 30 degrees")
        .select_type("Room")
        .watch(["temperature"])
        .query("temperature>30")
        .build()
    )
    step("create subscription", lambda: client.subscriptions.create(subscription))
    step("create the same subscription again", lambda: client.subscriptions.create(subscription))
    step("list subscriptions", lambda: [s["id"] for s in client.subscriptions.list()])
    step("get subscription", lambda: client.subscriptions.get(SUBSCRIPTION))
    step("subscription exists", lambda: client.subscriptions.exists(SUBSCRIPTION))
    step(
        "update that notifies", lambda: summary(client.update([Entity("Room", "orange-b1").prop("temperature", 31.5)]))
    )

    def notified() -> Any:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            notification = client.subscriptions.get(SUBSCRIPTION)["notification"]
            if notification.get("timesSent"):
                return notification
            time.sleep(0.1)
        return client.subscriptions.get(SUBSCRIPTION)["notification"]

    step("notification status", notified)
    step("delete subscriptions by pattern", lambda: client.subscriptions.delete("above 30"))
    step("list subscriptions after delete", lambda: client.subscriptions.list())

    # the temporal API: the history that creates and updates with observedAt made
    meter = Entity("Meter", "orange-m1").prop("power", 1.0, observedat="2026-12-01T10:00:00Z")
    step("create meter", lambda: client.create(meter))
    for hour, value in ((11, 2.0), (12, 3.0)):
        reading = Entity("Meter", "orange-m1").prop("power", value, observedat=f"2026-12-01T{hour}:00:00Z")
        step(f"update meter at {hour}", lambda reading=reading: summary(client.update([reading])))
    step("temporal get", lambda: client.temporal.get(meter))
    step("temporal get verbose", lambda: client.temporal.get(meter, verbose=True))
    step("temporal query", lambda: client.temporal.query(type="Meter"))
    step("delete meter", lambda: client.delete(meter))

    step("add context", lambda: client.contexts.add(CONTEXT))
    contexts = step("list contexts", lambda: client.contexts.list())
    hosted = [c for c in contexts or [] if "jsonldContexts" in c]
    step("get hosted context", lambda: client.contexts.get(hosted[0]))
    step("hosted context exists", lambda: client.contexts.exists(hosted[0]))
    step("contexts cleanup", lambda: client.contexts.cleanup())
    step("list contexts after cleanup", lambda: [c for c in client.contexts.list() if "jsonldContexts" in c])

    step("delete", lambda: client.delete(one))
    step("exists after delete", lambda: client.exists(one))
    step("delete_where", lambda: client.delete_where(type="Room", q="temperature>30"))
    step("query after delete_where", lambda: sorted(e.id for e in client.query(type="Room")))
    client.upsert(rooms)
    step("drop", lambda: client.drop("Room"))
    step("count after drop", lambda: client.count(type="Room"))
    client.upsert(rooms)
    step("subscription to purge", lambda: client.subscriptions.create(subscription))
    step("purge", lambda: client.purge())
    step("types after purge", lambda: client.types.list())
    step("subscriptions purge", lambda: client.subscriptions.purge())
    step("list subscriptions after purge", lambda: client.subscriptions.list())
    client.close()


async def drive_async(broker_url: str, receiver_url: str) -> None:
    where = urlsplit(broker_url)
    client = AsyncClient(hostname=where.hostname, port=where.port, tenant="orange-async")
    try:
        one = room("async-1", 21.5)
        await astep("async create", lambda: client.create(one))
        await astep("async get", lambda: _to_dict(client.get(one)))
        await astep("async exists", lambda: client.exists(one))
        rooms = [room(f"async-b{i}", 10.0 + 10 * i) for i in range(3)]
        await astep("async batch create", lambda: _summary(client.create(rooms)))
        await astep("async count", lambda: client.count(type="Room"))
        await astep("async query", lambda: _ids(client.query(type="Room", q="temperature>=20")))
        await astep("async batch upsert", lambda: _summary(client.upsert(rooms)))
        await astep(
            "async batch update",
            lambda: _summary(client.update([Entity("Room", f"async-b{i}").prop("temperature", 5.0) for i in range(3)])),
        )
        await astep("async batch delete", lambda: _summary(client.delete(rooms[:1])))
        subscription = (
            SubscriptionBuilder(f"{receiver_url}/orange-async").id(SUBSCRIPTION + ":async").select_type("Room").build()
        )
        await astep("async create subscription", lambda: client.subscriptions.create(subscription))
        await astep("async list subscriptions", lambda: _sub_ids(client.subscriptions.list()))
        await astep("async get subscription", lambda: client.subscriptions.get(SUBSCRIPTION + ":async"))
        await astep("async delete", lambda: client.delete(one))
        await astep("async purge", lambda: client.purge())
        await astep("async count after purge", lambda: client.count(type="Room"))
        await astep("async subscriptions purge", lambda: client.subscriptions.purge())
        await astep("async list subscriptions after purge", lambda: client.subscriptions.list())
    finally:
        await client.close()


async def _to_dict(entity: Awaitable[Entity]) -> Any:
    return (await entity).to_dict()


async def _summary(result: Awaitable[Any]) -> Any:
    return summary(await result)


async def _ids(entities: Awaitable[list[Entity]]) -> list[str]:
    return sorted(e.id for e in await entities)


async def _sub_ids(subscriptions: Awaitable[list[dict[str, Any]]]) -> list[str]:
    return [s["id"] for s in await subscriptions]


if __name__ == "__main__":
    drive(sys.argv[1], sys.argv[2])
    asyncio.run(drive_async(sys.argv[1], sys.argv[2]))
    with open(sys.argv[3], "w") as out:
        json.dump({"steps": steps}, out, default=str)
