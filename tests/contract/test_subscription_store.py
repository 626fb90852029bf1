"""The subscription part of the Store contract: documents, delivery state, notifier cursors (every backend)."""

from __future__ import annotations

import asyncio

from broker.store.base import DEFAULT_TENANT, Delivery, Store
from tests.contract.contract_helpers import Reopen, entity, write_entities

S1, S2 = "urn:ngsi-ld:Subscription:1", "urn:ngsi-ld:Subscription:2"
T1 = "2026-01-01T00:00:00.000000Z"
T2 = "2026-01-01T00:00:01.000000Z"


def doc(sub_id: str, **extra: object) -> dict[str, object]:
    return {"id": sub_id, "type": "Subscription", **extra}


async def test_create_get_list_delete(store: Store) -> None:
    assert await store.create_subscription(DEFAULT_TENANT, S2, doc(S2))
    assert await store.create_subscription(DEFAULT_TENANT, S1, doc(S1, q="a>1"))
    got = await store.get_subscription(DEFAULT_TENANT, S1)
    assert got is not None and got.body == doc(S1, q="a>1") and got.state == {} and got.tenant == DEFAULT_TENANT
    assert [r.id for r in await store.list_subscriptions(DEFAULT_TENANT)] == [S1, S2]
    assert await store.delete_subscription(DEFAULT_TENANT, S1)
    assert not await store.delete_subscription(DEFAULT_TENANT, S1)
    assert await store.get_subscription(DEFAULT_TENANT, S1) is None
    assert [r.id for r in await store.list_subscriptions(DEFAULT_TENANT)] == [S2]


async def test_create_of_existing_id_writes_nothing(store: Store) -> None:
    assert await store.create_subscription(DEFAULT_TENANT, S1, doc(S1, q="a>1"))
    assert not await store.create_subscription(DEFAULT_TENANT, S1, doc(S1, q="b>2"))
    got = await store.get_subscription(DEFAULT_TENANT, S1)
    assert got is not None and got.body["q"] == "a>1"


async def test_subscriptions_are_per_tenant(store: Store) -> None:
    await store.create_subscription("t1", S1, doc(S1, n=1))
    await store.create_subscription("t2", S1, doc(S1, n=2))
    await store.create_subscription(DEFAULT_TENANT, S2, doc(S2))
    assert [r.body["n"] for r in await store.list_subscriptions("t2")] == [2]
    assert await store.get_subscription(DEFAULT_TENANT, S1) is None
    assert [(r.tenant, r.id) for r in await store.list_subscriptions()] == [
        (DEFAULT_TENANT, S2),
        ("t1", S1),
        ("t2", S1),
    ]
    assert await store.delete_subscription("t1", S1)
    assert await store.get_subscription("t2", S1) is not None


async def test_replace_only_existing_and_keeps_delivery_state(store: Store) -> None:
    assert not await store.replace_subscription(DEFAULT_TENANT, S1, doc(S1))
    assert await store.get_subscription(DEFAULT_TENANT, S1) is None
    await store.create_subscription(DEFAULT_TENANT, S1, doc(S1, q="a>1"))
    await store.record_delivery(DEFAULT_TENANT, S1, Delivery(T1, ok=True))
    assert await store.replace_subscription(DEFAULT_TENANT, S1, doc(S1, q="b>2"))
    got = await store.get_subscription(DEFAULT_TENANT, S1)
    assert got is not None and got.body["q"] == "b>2" and got.state["timesSent"] == 1


async def test_delivery_state_folds_outcomes(store: Store) -> None:
    await store.create_subscription(DEFAULT_TENANT, S1, doc(S1))
    await store.record_delivery(DEFAULT_TENANT, S1, Delivery(T1, ok=True))
    await store.record_delivery(DEFAULT_TENANT, S1, Delivery(T2, ok=False))
    got = await store.get_subscription(DEFAULT_TENANT, S1)
    assert got is not None
    assert got.state == {
        "timesSent": 2,
        "timesFailed": 1,
        "lastNotification": T2,
        "lastSuccess": T1,
        "lastFailure": T2,
        "status": "failed",
    }


async def test_delivery_of_deleted_subscription_is_a_no_op(store: Store) -> None:
    await store.record_delivery(DEFAULT_TENANT, S1, Delivery(T1, ok=True))
    assert await store.get_subscription(DEFAULT_TENANT, S1) is None


async def test_concurrent_edits_and_deliveries_lose_nothing(store: Store) -> None:
    await store.create_subscription(DEFAULT_TENANT, S1, doc(S1, n=0))

    async def edit(n: int) -> None:
        await store.replace_subscription(DEFAULT_TENANT, S1, doc(S1, n=n))

    async def deliver() -> None:
        await store.record_delivery(DEFAULT_TENANT, S1, Delivery(T1, ok=True))

    await asyncio.gather(*(f for i in range(1, 51) for f in (edit(i), deliver())))
    got = await store.get_subscription(DEFAULT_TENANT, S1)
    assert got is not None and got.body["n"] == 50 and got.state["timesSent"] == 50


async def test_stored_documents_are_copies(store: Store) -> None:
    body = doc(S1, entities=[{"type": "T"}])
    await store.create_subscription(DEFAULT_TENANT, S1, body)
    body["entities"].append({"type": "U"})  # type: ignore[attr-defined]
    got = await store.get_subscription(DEFAULT_TENANT, S1)
    assert got is not None and got.body["entities"] == [{"type": "T"}]
    got.body["q"] = "x"
    again = await store.get_subscription(DEFAULT_TENANT, S1)
    assert again is not None and "q" not in again.body


async def test_cursor_get_set(store: Store) -> None:
    assert await store.get_cursor("notifier") is None
    await store.set_cursor("notifier", 7)
    await store.set_cursor("other", 3)
    await store.set_cursor("notifier", 9)
    assert await store.get_cursor("notifier") == 9
    assert await store.get_cursor("other") == 3


async def test_last_seq_follows_the_change_feed(store: Store) -> None:
    assert await store.last_seq() == 0
    await write_entities(store, DEFAULT_TENANT, entity("urn:a"), entity("urn:b"))
    changes = await store.changes_since(0)
    assert await store.last_seq() == changes[-1].seq == 2


async def test_subscriptions_state_and_cursor_survive_reopen(store: Store, reopen: Reopen) -> None:
    await store.create_subscription("t1", S1, doc(S1, q="a>1"))
    await store.record_delivery("t1", S1, Delivery(T1, ok=False))
    await store.set_cursor("notifier", 42)
    await store.close()
    again = await reopen()
    got = await again.get_subscription("t1", S1)
    assert got is not None and got.body["q"] == "a>1" and got.state["timesFailed"] == 1
    assert await again.get_cursor("notifier") == 42


async def test_one_leader_per_store_location(store: Store, reopen: Reopen) -> None:
    assert await store.try_lead("notifier")
    assert await store.try_lead("notifier")  # asking again keeps the lead
    other = await reopen()
    assert not await other.try_lead("notifier")
    await store.close()  # the leader goes away: the lead is free
    assert await other.try_lead("notifier")


async def test_each_singleton_has_its_own_leader(store: Store, reopen: Reopen) -> None:
    """Leading the notifier must not let another process take the periodic notifications or retention as well
    (they would run twice): each name is led once, whoever leads the others."""
    assert await store.try_lead("notifier")
    other = await reopen()
    assert await other.try_lead("periodic")  # free: nobody led it yet
    assert not await store.try_lead("periodic")
    assert not await other.try_lead("notifier")
    assert await store.try_lead("retention") and not await other.try_lead("retention")



async def test_subscriptions_version_moves_with_every_document_change_only(store: Store) -> None:
    """The notifier re-reads the subscriptions when this version moves: it must move for a document made,
    replaced or deleted, never for a delivery or a refused change. A backend that cannot tell answers None (the
    notifier then reads them every time)."""
    last = await store.subscriptions_version()
    if last is None:
        return
    steps = [
        (store.create_subscription(DEFAULT_TENANT, S1, doc(S1)), True),
        (store.create_subscription(DEFAULT_TENANT, S1, doc(S1, q="b>2")), False),
        (store.record_delivery(DEFAULT_TENANT, S1, Delivery(ok=True, at=T1)), False),
        (store.replace_subscription("t2", S1, doc(S1)), False),
        (store.replace_subscription(DEFAULT_TENANT, S1, doc(S1, q="c>3")), True),
        (store.delete_subscription(DEFAULT_TENANT, S2), False),
        (store.delete_subscription(DEFAULT_TENANT, S1), True),
    ]
    for step, (call, moves) in enumerate(steps):
        await call
        now = await store.subscriptions_version()
        assert (now != last) == moves, step
        last = now


async def test_subscriptions_version_sees_other_processes(store: Store, reopen: Reopen) -> None:
    before = await store.subscriptions_version()
    if before is None:
        return
    other = await reopen()
    assert await other.create_subscription("t2", S2, doc(S2))
    assert await store.subscriptions_version() != before
