"""What the access policies cost (issue 18, records 0220, 0221): GET and PATCH of one entity on an open broker,
then with a bearer JWT carrying the admin role (no policy read), then as an operator under a 50-rule policy; the
same wrk scenarios and rows as `make bench` (bench/run.py secured_rows), without the rest of the run.

    python bench/access_cost.py [--duration 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.run import (  # noqa: E402 - needs the path above
    BASE,
    LOAD_CORE,
    Bench,
    Broker,
    format_table,
    machine_header,
    patch_run,
    secured_rows,
    server,
    vehicle_id,
    write_report,
)

ENTITIES = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
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
        ]
    )
    print("\n" + text)
    if args.out:
        write_report(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
