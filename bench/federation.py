"""What federation costs (issue 16): a query answered across two registered brokers, and one idle registration.

- "federated query, 2 sources": a city broker that holds nothing registers two Agora brokers holding N Vehicles
  each (inclusive, type Vehicle) and answers `type=Vehicle&limit=20` from both, one client (the latency of one
  user, as the query rows of bench/run.py). Target (issue 16): p95 under 25 ms with 10,000 entities per source.
- "idle registration": GET of one entity and the query row of bench/run.py on one broker, before and after one
  registration that matches nothing (ids of another type, an endpoint nobody listens on). Target: under 5% slower.

`make bench` runs both with 10,000 entities per broker, `make bench-quick` with 1,000. Alone:

    python bench/federation.py [--entities 10000] [--duration 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.run import (  # noqa: E402 - needs the path above
    BASE,
    QUERY,
    Bench,
    Broker,
    Row,
    format_table,
    http,
    machine_header,
    path_with,
    per_cpu_second,
    server,
    vehicle_id,
    write_report,
)

FEDERATED = {"type": "Vehicle", "limit": "20"}


def register(broker: Broker, endpoint: str, entity_info: dict[str, str]) -> None:
    body = {
        "type": "ContextSourceRegistration",
        "information": [{"entities": [entity_info]}],
        "endpoint": endpoint,
    }
    status, text, _ = http("POST", f"{broker.url}{BASE}/csourceRegistrations", body, {"Link": broker.link})
    if status != 201:
        raise RuntimeError(f"POST /csourceRegistrations answered {status}: {text[:300]!r}")


def federated_query_row(bench: Bench, python: Path, work: Path, n: int) -> Row:
    """The city broker's query over two source brokers of `n` Vehicles each (ids apart)."""
    city = Broker(python, work / "city.db")
    sources = [Broker(python, work / f"source{i}.db") for i in (1, 2)]
    with ExitStack() as stack:
        for i, source in enumerate(sources):
            stack.enter_context(server(source.cmd, source.ready))
            source.use_user_context()
            source.upsert(range(i * n, (i + 1) * n))
        proc, _ = stack.enter_context(server(city.cmd, city.ready))
        bench.server_pid = proc.pid
        city.use_user_context()
        for source in sources:
            register(city, source.url, {"type": "Vehicle"})
        path = path_with(FEDERATED)
        status, body, headers = http("GET", city.url + path, headers={"Link": city.link})
        res = bench.wrk(city.url, "get", {"path": path, "link": city.link}, connections=1)
        note = f"1 connection; limit=20 over {2 * n:,} entities in 2 brokers, the city holds none"
        row = bench.record(f"federated query, 2 sources of {n:,}", n, res, note=note)
        got = len(json.loads(body)) if status == 200 else -1
        warned = "ngsild-warning" in {k.lower() for k in headers}
        if (got != 20 or warned) and not row.error:
            row.error = f"expected 20 entities from the two sources, got {got} (status {status}): {body[:200]!r}"
        return row


def idle_registration_rows(bench: Bench, python: Path, work: Path, n: int) -> None:
    """GET and query on one broker of `n` Vehicles, before and after one registration that matches nothing."""
    broker = Broker(python, work / "idle-registration.db")
    with server(broker.cmd, broker.ready) as (proc, _):
        bench.server_pid = proc.pid
        broker.use_user_context()
        broker.upsert(range(n))
        # the GET row with the run's connections, the query row with one (as bench/run.py measures them)
        runs = {"GET entity": (f"{BASE}/entities/{vehicle_id(1)}", None), "query type + q": (path_with(QUERY), 1)}
        before = {
            name: bench.wrk(broker.url, "get", {"path": p, "link": broker.link}, c) for name, (p, c) in runs.items()
        }
        # matches no entity here: an id pattern of another type (a type alone may hold any id a GET names)
        register(broker, "http://127.0.0.1:9/nobody", {"idPattern": "^urn:ngsi-ld:Other:", "type": "Other"})
        for name, (path, connections) in runs.items():
            res = bench.wrk(broker.url, "get", {"path": path, "link": broker.link}, connections)
            alone, idle = (
                per_cpu_second(before[name].rate, before[name].server_cpu),
                per_cpu_second(res.rate, res.server_cpu),
            )
            note = f"one registration of other ids and type; without it {before[name].rate:,.0f} req/s"
            if alone and idle:
                note += f"; {1 - idle / alone:.1%} slower per CPU-second"
            bench.record(f"{name}, 1 idle registration", n, res, note=note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000, help="Vehicles per broker (default 10000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections of the GET rows (default 32)")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="agora-bench-federation-") as tmp:
        bench = Bench(args.duration, args.connections, Path(tmp))
        federated_query_row(bench, python, Path(tmp), args.entities)
        idle_registration_rows(bench, python, Path(tmp), args.entities)
    text = "\n".join(["# Agora federation benchmark", "", machine_header(str(python)), "", format_table(bench.rows)])
    print("\n" + text)
    if args.out:
        write_report(Path(args.out), text + "\n")
    return 1 if any(r.error for r in bench.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
