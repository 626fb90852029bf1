"""The csource notifier over a memory store (broker.notify.csource, records 0171-0173), its deliveries caught by a
transport that records them: the initial listing is not repeated by the changes it already holds, throttling
drops notifications inside the period (never the initial one), an expired registration is deleted and told as
noLongerMatching, and the delivery state records each outcome."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from broker.core.caller import Caller
from broker.core.csource_subscriptions import CsourceSubscriptions
from broker.core.registrations import Registrations
from broker.core.subscriptions import Endpoint
from broker.ld.resolver import ContextResolver
from broker.ld.termmap import core_termmap
from broker.notify.csource import CsourceNotifier
from broker.store.memory import MemoryStore

pytestmark = pytest.mark.asyncio
TM = core_termmap()
CALLER = Caller(tenant="")


class Recording:
    def __init__(self, ok: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.ok = ok

    async def attempt(self, endpoint: Endpoint, content: bytes, headers: dict[str, str], timeout: float) -> bool:
        self.sent.append(orjson.loads(content))
        return self.ok

    async def aclose(self) -> None:
        pass

    def reasons(self) -> list[tuple[str, list[str]]]:
        return [(n["triggerReason"], [r["id"] for r in n["data"]]) for n in self.sent]


async def setup(ok: bool = True) -> tuple[MemoryStore, CsourceNotifier, Recording]:
    store = MemoryStore()
    await store.open()
    notifier = CsourceNotifier(store, ContextResolver())
    recording = Recording(ok)
    notifier._transport = recording  # type: ignore[assignment]
    return store, notifier, recording


def registration(reg_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": reg_id,
        "type": "ContextSourceRegistration",
        "endpoint": "http://source.example/ngsi-ld",
        "information": [{"entities": [{"type": "Vehicle"}]}],
        **extra,
    }


async def subscribe(store: MemoryStore, **extra: Any) -> str:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
        **extra,
    }
    return await CsourceSubscriptions(store).create(CALLER, TM, body, None)


async def test_the_initial_listing_is_not_repeated_by_the_changes_it_holds() -> None:
    store, notifier, recording = await setup()
    regs = Registrations(store)
    await notifier.step()  # the cursor is taken: nothing so far is news
    await regs.create(CALLER, registration("urn:r:1"), TM)
    sub_id = await subscribe(store)
    await notifier.step()
    assert recording.reasons() == [("newlyMatching", ["urn:r:1"])]
    await regs.create(CALLER, registration("urn:r:2"), TM)
    await notifier.step()
    assert recording.reasons()[1:] == [("newlyMatching", ["urn:r:2"])]
    record = await store.get_csource_subscription("", sub_id)
    assert record is not None and record.state["timesSent"] == 2 and record.state["status"] == "ok"


async def test_nothing_matching_settles_the_initial_notification_without_sending() -> None:
    store, notifier, recording = await setup()
    sub_id = await subscribe(store)
    await notifier.step()
    await notifier.step()
    assert recording.sent == []
    record = await store.get_csource_subscription("", sub_id)
    assert record is not None and "timesSent" not in record.state and record.state["initial"]


async def test_throttling_drops_change_notifications_inside_the_period() -> None:
    store, notifier, recording = await setup()
    regs = Registrations(store)
    await regs.create(CALLER, registration("urn:r:1"), TM)
    await subscribe(store, throttling=60)
    await notifier.step()
    await regs.create(CALLER, registration("urn:r:2"), TM)
    await notifier.step()
    assert recording.reasons() == [("newlyMatching", ["urn:r:1"])]


async def test_an_expired_registration_is_deleted_and_told() -> None:
    store, notifier, recording = await setup()
    await subscribe(store)
    await notifier.step()
    stored = registration("urn:r:old", expiresAt="2000-01-01T00:00:00Z")
    stored["information"] = [{"entities": [{"type": [TM.expand_term("Vehicle")]}]}]  # as the store keeps it
    await store.create_registration("", "urn:r:old", stored)
    await notifier.step()  # created (already expired, written past the API): it matches, then it is swept
    notifier._swept = 0.0
    await notifier.step()
    await notifier.step()
    assert recording.reasons() == [("newlyMatching", ["urn:r:old"]), ("noLongerMatching", ["urn:r:old"])]
    assert await store.get_registration("", "urn:r:old") is None


async def test_a_failed_delivery_is_recorded() -> None:
    store, notifier, recording = await setup(ok=False)
    notifier.retry = type(notifier.retry)(attempts=1, backoff=0.0)
    await Registrations(store).create(CALLER, registration("urn:r:1"), TM)
    sub_id = await subscribe(store)
    await notifier.step()
    record = await store.get_csource_subscription("", sub_id)
    assert record is not None and record.state["status"] == "failed" and "lastFailure" in record.state
    assert record.state["initial"] and len(recording.sent) == 1  # given up after its attempts: owed no more
