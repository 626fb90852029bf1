"""Fill a SQLite store with N benchmark entities directly through the Store API (no HTTP), for the start-up and
memory figures at 1,000,000 entities (issue 9). History recording is off: it is the entity state that is measured.

    python bench/bulk_load.py DB_FILE N
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.run import entity  # noqa: E402 - needs the path above
from broker.core.entities import new_entity  # noqa: E402
from broker.core.model import Entity, now_iso  # noqa: E402
from broker.core.normalize import parse_entity  # noqa: E402
from broker.ld.termmap import core_termmap  # noqa: E402
from broker.store.base import HistoryPolicy, WritePlan  # noqa: E402
from broker.store.sqlite import SqliteStore  # noqa: E402

BATCH = 2000


async def load(path: str, n: int) -> float:
    store = SqliteStore(path)
    store.history = HistoryPolicy(record=False)
    await store.open()
    tm = core_termmap()
    began = time.perf_counter()
    try:
        for start in range(0, n, BATCH):
            now = now_iso()
            batch = {
                f"urn:ngsi-ld:Vehicle:{i}": new_entity(
                    parse_entity(entity(f"urn:ngsi-ld:Vehicle:{i}", "Vehicle", i)), tm, now
                )
                for i in range(start, min(start + BATCH, n))
            }

            def plan(_current: Mapping[str, Entity | None], batch: dict[str, Entity] = batch) -> WritePlan[None]:
                return WritePlan(dict(batch))

            await store.write("", list(batch), plan)
    finally:
        await store.close()
    return time.perf_counter() - began


def main() -> None:
    took = asyncio.run(load(sys.argv[1], int(sys.argv[2])))
    print(f"{took:.1f}")


if __name__ == "__main__":
    main()
