"""API keys in the Store contract (issue 18, record 0203), run against every backend in conftest.BACKENDS: a key id
is created once, its record keeps the secret's hash and its roles and tenants, revocation marks it once and keeps
it listed, and another store object on the same URL (another broker process) sees the same keys."""

from __future__ import annotations

from broker.store.base import ApiKeyRecord, Store
from tests.contract.contract_helpers import Reopen

STAMP = "2026-12-07T10:00:00.000000Z"


def key(key_id: str = "k1", tenants: tuple[str, ...] | None = ("city",)) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, f"gateway {key_id}", "ab" * 32, ("writer", "reader"), tenants, STAMP)


async def test_create_then_get(store: Store) -> None:
    assert await store.create_api_key(key())
    assert await store.get_api_key("k1") == key()
    assert await store.get_api_key("k2") is None


async def test_a_key_id_is_created_once(store: Store) -> None:
    assert await store.create_api_key(key())
    other = ApiKeyRecord("k1", "another", "cd" * 32, (), None, STAMP)
    assert not await store.create_api_key(other)
    assert await store.get_api_key("k1") == key()


async def test_every_tenant_is_kept_apart_from_none(store: Store) -> None:
    await store.create_api_key(key("k1", None))
    await store.create_api_key(key("k2", ()))
    assert [(k.id, k.tenants) for k in await store.list_api_keys()] == [("k1", None), ("k2", ())]


async def test_revoke_marks_the_key_once_and_keeps_it_listed(store: Store) -> None:
    await store.create_api_key(key("k2"))
    await store.create_api_key(key("k1"))
    assert await store.revoke_api_key("k1", "2026-12-07T11:00:00.000000Z")
    assert not await store.revoke_api_key("k1", "2026-12-07T12:00:00.000000Z")
    assert not await store.revoke_api_key("missing", STAMP)
    listed = await store.list_api_keys()
    assert [(k.id, k.revoked_at) for k in listed] == [("k1", "2026-12-07T11:00:00.000000Z"), ("k2", None)]


async def test_another_store_object_sees_the_keys(store: Store, reopen: Reopen) -> None:
    await store.create_api_key(key())
    other = await reopen()
    assert await other.get_api_key("k1") == key()
    assert await other.revoke_api_key("k1", STAMP)
    found = await store.get_api_key("k1")
    assert found is not None and found.revoked_at == STAMP
