"""The open data dump of a bulk-loaded SQLite store (issue 19, record 0341): publish the Vehicle entities as one
dataset, then survey it and write its four distributions (GeoJSON, CSV, NGSI-LD, Turtle) to files from one pass, as
the regeneration job does. Prints one JSON line: seconds, the peak RSS of this process and its RSS before the dump
(what the dump itself costs is the difference: one store page at a time, whatever N is), bytes per format.

    python bench/opendata_dump.py DB_FILE OUT_DIR
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from broker.opendata.dumps import FORMATS, survey, write_all  # noqa: E402 - needs the path above
from broker.opendata.spec import DatasetSpec  # noqa: E402
from broker.store.sqlite import SqliteStore  # noqa: E402

VEHICLE = "https://uri.etsi.org/ngsi-ld/default-context/Vehicle"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def dump(db: str, out: Path) -> dict[str, object]:
    store = SqliteStore(db)
    await store.open()
    spec = DatasetSpec("vehicles", VEHICLE, "Vehicles", "Every benchmark vehicle")
    before = peak_mb()
    began = time.perf_counter()
    try:
        found = await survey(store, spec)
        files = {fmt: out / f"data.{fmt}" for fmt in FORMATS}
        sizes = await write_all(store, spec, found, "http://127.0.0.1:1026", files)
    finally:
        await store.close()
    took = time.perf_counter() - began
    return {"entities": found.count, "seconds": took, "peak_mb": peak_mb(), "before_mb": before, "bytes": sizes}


def main() -> None:
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(dump(sys.argv[1], out))))


if __name__ == "__main__":
    main()
