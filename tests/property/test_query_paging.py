"""A page read with early stopping equals the same page cut from the full, counted selection."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.core.caller import Caller
from broker.core.entities import Entities
from broker.core.query import Paging, Queries
from broker.ld.termmap import core_termmap
from broker.query import parse_query
from broker.store.memory import MemoryStore
from broker.store.sqlite import SqliteStore


async def _pages(store_kind: str, limit: int, offset: int, q: str, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "a.db") if store_kind == "sqlite" else MemoryStore()
        await store.open()
        tm, caller = core_termmap(), Caller()
        entities = Entities(store)
        for i in range(40):
            await entities.create(caller, tm, {"id": f"urn:ngsi-ld:T:{i:03d}", "type": "T", "n": i % 7})
        queries = Queries(store, batch_size=batch)
        query = parse_query({"type": "T", "q": q}, tm)
        early = await queries.query(caller, [query], Paging(limit, offset))
        counted = await queries.query(caller, [query], Paging(limit, offset), count=True)
        everything = await queries.select(caller, [query])
        await store.close()
    assert [e["id"] for e in early.entities] == [e["id"] for e in counted.entities]
    assert [e["id"] for e in early.entities] == [e["id"] for e in everything[offset : offset + limit]]
    assert early.more == counted.more == (offset + limit < len(everything))
    assert early.count is None and counted.count == len(everything)


@settings(max_examples=40, deadline=None)
@given(
    store_kind=st.sampled_from(["sqlite", "memory"]),
    limit=st.integers(0, 12),
    offset=st.integers(0, 45),
    q=st.sampled_from(["n>=0", "n==3", "n<2", "n==9"]),
    batch=st.integers(1, 50),
)
def test_early_stopping_pages_equal_counted_pages(store_kind: str, limit: int, offset: int, q: str, batch: int) -> None:
    asyncio.run(_pages(store_kind, limit, offset, q, batch))
