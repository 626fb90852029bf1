"""Context source subscriptions and the registration change feed in the Store contract (clauses 5.11, 5.11.7), run
against every backend in conftest.BACKENDS: a subscription belongs to one tenant and keeps its delivery state
when replaced; every registration change is in the feed with its states before and after, committed with it, and
seen by another store object on the same URL (another broker process)."""

from __future__ import annotations

from broker.store.base import DEFAULT_TENANT, Delivery, Store
from tests.contract.contract_helpers import Reopen

SUB = "urn:ngsi-ld:Subscription:cs"
REG = "urn:ngsi-ld:ContextSourceRegistration:a"


def sub(endpoint: str = "http://a.example/notify") -> dict[str, object]:
    return {"id": SUB, "type": "Subscription", "notification": {"endpoint": {"uri": endpoint}}}


def reg(endpoint: str) -> dict[str, object]:
    return {"id": REG, "type": "ContextSourceRegistration", "endpoint": endpoint, "information": [{}]}


async def test_csource_subscription_crud(store: Store) -> None:
    assert await store.create_csource_subscription(DEFAULT_TENANT, SUB, sub())
    assert not await store.create_csource_subscription(DEFAULT_TENANT, SUB, sub("http://b.example"))
    found = await store.get_csource_subscription(DEFAULT_TENANT, SUB)
    assert found is not None and found.body == sub() and found.state == {}
    assert await store.replace_csource_subscription(DEFAULT_TENANT, SUB, sub("http://c.example"))
    assert not await store.replace_csource_subscription("city", SUB, sub())
    assert await store.delete_csource_subscription(DEFAULT_TENANT, SUB)
    assert not await store.delete_csource_subscription(DEFAULT_TENANT, SUB)
    assert await store.get_csource_subscription(DEFAULT_TENANT, SUB) is None


async def test_csource_subscriptions_are_apart_from_entity_subscriptions(store: Store) -> None:
    await store.create_csource_subscription(DEFAULT_TENANT, SUB, sub())
    assert await store.list_subscriptions() == []
    await store.create_subscription(DEFAULT_TENANT, "urn:ngsi-ld:Subscription:e", sub())
    assert [r.id for r in await store.list_csource_subscriptions()] == [SUB]


async def test_csource_subscriptions_belong_to_their_tenant_in_id_order(store: Store) -> None:
    for name in ("b", "a"):
        await store.create_csource_subscription("city", f"urn:x:{name}", sub())
    await store.create_csource_subscription(DEFAULT_TENANT, "urn:x:c", sub())
    assert [(r.tenant, r.id) for r in await store.list_csource_subscriptions()] == [
        (DEFAULT_TENANT, "urn:x:c"),
        ("city", "urn:x:a"),
        ("city", "urn:x:b"),
    ]
    assert [r.id for r in await store.list_csource_subscriptions("city")] == ["urn:x:a", "urn:x:b"]
    assert await store.get_csource_subscription(DEFAULT_TENANT, "urn:x:a") is None


async def test_delivery_state_survives_a_replacement(store: Store) -> None:
    await store.create_csource_subscription(DEFAULT_TENANT, SUB, sub())
    await store.record_csource_delivery(DEFAULT_TENANT, SUB, Delivery("2026-01-01T00:00:00Z", True), "m1")
    await store.record_csource_delivery(DEFAULT_TENANT, SUB, Delivery("2026-01-01T00:00:01Z", False))
    await store.replace_csource_subscription(DEFAULT_TENANT, SUB, sub("http://c.example"))
    found = await store.get_csource_subscription(DEFAULT_TENANT, SUB)
    assert found is not None
    assert found.state == {
        "timesSent": 2,
        "timesFailed": 1,
        "lastNotification": "2026-01-01T00:00:01Z",
        "lastSuccess": "2026-01-01T00:00:00Z",
        "lastFailure": "2026-01-01T00:00:01Z",
        "status": "failed",
        "initial": "m1",
    }
    await store.record_csource_delivery("city", SUB, Delivery("2026-01-01T00:00:02Z", True))  # absent: no-op
    assert await store.get_csource_subscription("city", SUB) is None


async def test_every_registration_change_is_in_the_feed(store: Store) -> None:
    start = await store.registrations_version()
    await store.create_registration("city", REG, reg("http://a.example"))
    assert not await store.create_registration("city", REG, reg("http://x.example"))  # refused: not in the feed
    await store.replace_registration("city", REG, reg("http://b.example"))
    assert not await store.replace_registration(DEFAULT_TENANT, REG, reg("http://x.example"))
    await store.delete_registration("city", REG)
    changes = await store.registration_changes_since(start)
    assert [(c.tenant, c.id) for c in changes] == [("city", REG)] * 3
    assert [c.seq for c in changes] == [start + 1, start + 2, start + 3]
    assert changes[-1].seq == await store.registrations_version()
    assert [(c.before, c.after) for c in changes] == [
        (None, reg("http://a.example")),
        (reg("http://a.example"), reg("http://b.example")),
        (reg("http://b.example"), None),
    ]
    assert all(c.at.endswith("Z") for c in changes)
    assert [c.seq for c in await store.registration_changes_since(start + 1, limit=1)] == [start + 2]


async def test_trimmed_changes_are_gone(store: Store) -> None:
    start = await store.registrations_version()
    await store.create_registration("city", REG, reg("http://a.example"))
    await store.delete_registration("city", REG)
    await store.trim_registration_changes(start + 1)
    assert [c.seq for c in await store.registration_changes_since(start)] == [start + 2]


async def test_another_store_object_sees_the_feed_and_the_subscriptions(store: Store, reopen: Reopen) -> None:
    await store.create_registration("city", REG, reg("http://a.example"))
    await store.create_csource_subscription("city", SUB, sub())
    other = await reopen()
    assert [c.id for c in await other.registration_changes_since(0)] == [REG]
    assert [r.id for r in await other.list_csource_subscriptions("city")] == [SUB]
