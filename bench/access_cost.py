"""What the access policies cost (issue 18, records 0220, 0221): GET and PATCH of one entity on an open broker,
then with a bearer JWT carrying the admin role (no policy read), then as an operator under a 50-rule policy; the
same wrk scenarios and rows as `make bench` (bench/run.py secured_rows), without the rest of the run. Then, in
process and so steadier on a shared machine, what the decision point itself adds to one GET (the view and the
redaction of the entity) and one PATCH (the guard of the write plan), in microseconds.

    python bench/access_cost.py [--duration 10] [--out FILE] [--decisions-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.issuer import OPERATOR_ROLE  # noqa: E402
from bench.run import (  # noqa: E402 - needs the path above
    BASE,
    LOAD_CORE,
    USER_CONTEXT,
    Bench,
    Broker,
    fifty_rules,
    format_table,
    machine_header,
    patch_run,
    secured_rows,
    server,
    vehicle_id,
    write_report,
)
from broker.core.access import Access, parse_rule  # noqa: E402
from broker.core.caller import Caller  # noqa: E402
from broker.ld.termmap import TermMap  # noqa: E402
from broker.store.base import WritePlan  # noqa: E402
from broker.store.memory import MemoryStore  # noqa: E402

ENTITIES = 1000
ROUNDS = 20_000
VOCAB = "https://example.org/agora-bench/"


def vehicle() -> dict[str, Any]:
    """A stored Vehicle as the benchmark loads them: six attributes."""
    instance = {
        "type": "Property",
        "value": 1,
        "observedAt": "2026-01-01T00:00:00Z",
        "createdAt": "x",
        "modifiedAt": "x",
    }
    names = ("speed", "fuel", "brand", "temperature", "mileage", "status")
    attrs = {VOCAB + a: [dict(instance)] for a in names}
    return {"id": vehicle_id(1), "type": [VOCAB + "Vehicle"], "createdAt": "x", "modifiedAt": "x", "attrs": attrs}


def patch_fuel(current: Any) -> WritePlan[None]:
    entity = current[vehicle_id(1)]
    entity["attrs"][VOCAB + "fuel"][0]["value"] = 2
    return WritePlan({vehicle_id(1): entity})


async def decision_costs() -> list[str]:
    """Microseconds the decision point adds per GET and per PATCH, for the admin role and an operator under the
    50 rules (the plan's own work subtracted)."""
    store = MemoryStore()
    await store.open()
    tm = TermMap.build(USER_CONTEXT["@context"], {})
    for rule in fifty_rules():
        await store.put_policy(parse_rule(rule, tm.expand_term).to_doc())
    access, entity, raw = Access(store), vehicle(), json.dumps(vehicle())
    lines = []
    for caller in (Caller("", "bench", ("admin",)), Caller("", "operator", (OPERATOR_ROLE,), "wrk")):
        started = time.perf_counter()
        for _ in range(ROUNDS):
            (await access.view(caller)).redact(entity)
        get = (time.perf_counter() - started) / ROUNDS * 1e6
        started = time.perf_counter()
        for _ in range(ROUNDS):
            (await access.view(caller)).guard(patch_fuel)({vehicle_id(1): json.loads(raw)})
        guarded = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(ROUNDS):
            patch_fuel({vehicle_id(1): json.loads(raw)})
        patch = (guarded - (time.perf_counter() - started)) / ROUNDS * 1e6
        lines.append(f"| {caller.roles[0]} | {get:.1f} | {max(patch, 0.0):.1f} |")
    return ["| caller | GET: view + redaction (us) | PATCH: guard of the plan (us) |", "|---|--:|--:|", *lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    parser.add_argument("--decisions-only", action="store_true", help="only the in-process decision costs")
    args = parser.parse_args(argv)
    decisions = asyncio.run(decision_costs())
    if args.decisions_only:
        print("\n".join(decisions))
        return 0
    python = Path(sys.executable)
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="agora-access-") as tmp:
        work = Path(tmp)
        bench = Bench(args.duration, 32, work)
        broker = Broker(python, work / "open.db")
        with server(broker.cmd, broker.ready) as (proc, _):
            bench.server_pid = proc.pid
            broker.use_user_context()
            broker.load_to(ENTITIES)
            one = f"{BASE}/entities/{vehicle_id(1)}"
            bench.wrk(broker.url, "get", {"path": one, "link": broker.link}, duration=2)  # warm-up
            get_row = bench.record(
                "GET entity, user @context", ENTITIES, bench.wrk(broker.url, "get", {"path": one, "link": broker.link})
            )
            patch_row = bench.record("PATCH one attribute", ENTITIES, patch_run(bench, broker, ENTITIES))
        secured_rows(bench, python, work, ENTITIES, get_row, patch_row)
    text = "\n".join(
        [
            "# What the access policies cost",
            "",
            machine_header(str(python)),
            f"- each wrk run: {bench.duration} s, 32 connections, 1 thread; load average {load_start:.2f} at the "
            f"start, {os.getloadavg()[0]:.2f} at the end",
            "",
            format_table(bench.rows),
            "",
            f"What the decision point adds, in process ({ROUNDS:,} rounds each):",
            "",
            *decisions,
            "",
        ]
    )
    print("\n" + text)
    if args.out:
        write_report(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
