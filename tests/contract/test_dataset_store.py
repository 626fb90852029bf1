"""Open datasets in the Store contract (issue 19, records 0340-0343), run against every backend in
conftest.BACKENDS: a document is put and replaced by id, its state is kept beside it across replacements and goes
with it, and another store object on the same URL (another broker process) sees the same datasets."""

from __future__ import annotations

from typing import Any

from broker.store.base import Store
from tests.contract.contract_helpers import Reopen


def doc(dataset_id: str = "stops", title: str = "Stops") -> dict[str, Any]:
    return {"id": dataset_id, "type": "https://example.org/Stop", "title": title, "licence": "https://l.example/1"}


STATE = {"count": 3, "bbox": [1.0, 2.0, 3.0, 4.0], "generatedAt": "2026-12-07T10:00:00.000000Z"}


async def test_put_get_list_in_id_order(store: Store) -> None:
    assert await store.put_dataset(doc("stops"))
    assert await store.put_dataset(doc("pipes", "Pipes"))
    assert await store.get_dataset("stops") == doc("stops")
    assert await store.get_dataset("missing") is None
    assert [d["id"] for d in await store.list_datasets()] == ["pipes", "stops"]


async def test_a_put_of_the_same_id_replaces_and_keeps_the_state(store: Store) -> None:
    await store.put_dataset(doc())
    assert await store.set_dataset_state("stops", STATE)
    assert not await store.put_dataset(doc(title="Bus stops"))
    assert (await store.get_dataset("stops") or {})["title"] == "Bus stops"
    assert await store.get_dataset_state("stops") == STATE


async def test_a_state_needs_its_dataset_and_goes_with_it(store: Store) -> None:
    assert not await store.set_dataset_state("stops", STATE)
    assert await store.get_dataset_state("stops") is None
    await store.put_dataset(doc())
    assert await store.get_dataset_state("stops") is None
    await store.set_dataset_state("stops", STATE)
    assert await store.delete_dataset("stops")
    assert not await store.delete_dataset("stops")
    assert await store.get_dataset("stops") is None
    assert await store.get_dataset_state("stops") is None
    assert await store.list_datasets() == []


async def test_another_store_object_sees_the_datasets(store: Store, reopen: Reopen) -> None:
    await store.put_dataset(doc())
    await store.set_dataset_state("stops", STATE)
    other = await reopen()
    assert await other.get_dataset("stops") == doc()
    assert await other.get_dataset_state("stops") == STATE
    assert await other.delete_dataset("stops")
    assert await store.list_datasets() == []
