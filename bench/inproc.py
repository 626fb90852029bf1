"""In-process driver: the broker's ASGI app called directly (no sockets, no uvicorn), to profile one operation.

    python bench/inproc.py get|query|geo|patch|create|batch|ceiling [--n 2000] [--profile out.prof] [--store redis://127.0.0.1:6379/0]
    python bench/inproc.py get --callgrind [--n 300]

Prints microseconds of CPU per request. The broker's own share of a request, without the HTTP server's: the
figure to compare before and after a change to the hot path (the wrk harness in bench/run.py gives the whole).

With --callgrind the same run goes under valgrind's callgrind, which counts only the measured requests (switched on
with callgrind_control around them) and prints instructions per request: unlike CPU time, the figure repeats on a
loaded machine, so it compares two versions of the code when wall-clock and CPU numbers are noise.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.ceiling import build_app as build_ceiling  # noqa: E402
from bench.run import GEO, QUERY, USER_CONTEXT, entity  # noqa: E402
from broker.http.app import create_app  # noqa: E402
from broker.settings import Settings  # noqa: E402

BASE = "/ngsi-ld/v1"
UNDER_CALLGRIND = "AGORA_BENCH_UNDER_CALLGRIND"  # set in the child that runs under valgrind: its dump directory


class Client:
    """Calls the ASGI app as uvicorn would: one scope, one body message, collects status and body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        p, _, qs = path.partition("?")
        hdrs = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        hdrs.append((b"host", b"127.0.0.1"))
        if body:
            hdrs.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(p),
            "raw_path": p.encode(),
            "query_string": qs.encode(),
            "root_path": "",
            "headers": hdrs,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 1026),
            "state": {},
        }
        sent = False
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            else:
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return out["status"], out["body"], out["headers"]


async def lifespan(app: Any) -> tuple[asyncio.Queue[Any], asyncio.Task[Any]]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    msg = await outbox.get()
    assert msg["type"] == "lifespan.startup.complete", msg
    return inbox, task


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="agora-inproc-"))
    os.environ.setdefault("AGORA_LOG_LEVEL", "warning")
    settings = Settings.from_env(store=args.store or f"sqlite:///{work / 'b.db'}")
    app = create_app(settings)
    inbox, task = await lifespan(app)
    c = Client(app)
    status, _, h = await c.call(
        "POST", BASE + "/jsonldContexts", json.dumps(USER_CONTEXT).encode(), {"content-type": "application/json"}
    )
    assert status == 201, status
    rel = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    link = f"<http://127.0.0.1:1026{h['location']}>; {rel}"
    jh = {"content-type": "application/json", "link": link}
    for first in range(0, args.entities, 1000):
        ids = range(first, min(first + 1000, args.entities))
        batch = [entity(f"urn:ngsi-ld:Vehicle:{i}", "Vehicle", i) for i in ids]
        status, body, _ = await c.call("POST", BASE + "/entityOperations/upsert", json.dumps(batch).encode(), jh)
        assert status in (201, 204), (status, body[:200])
    for i in range(args.idle_subs):  # subscriptions whose q never matches: the notifier reads and matches every change
        sub = {
            "type": "Subscription",
            "entities": [{"type": "Vehicle"}],
            "q": f"speed=={1000 + i}",
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/never"}},
        }
        status, body, _ = await c.call("POST", BASE + "/subscriptions", json.dumps(sub).encode(), jh)
        assert status == 201, (status, body[:200])
    n = args.n
    created = [0]
    if args.op == "ceiling":  # the bare Starlette app of bench/ceiling.py answering the bytes of the same GET
        status, body, h = await c.call("GET", f"{BASE}/entities/urn:ngsi-ld:Vehicle:1", b"", {"link": link})
        assert status == 200, status
        c = Client(build_ceiling(body, {k: v for k, v in h.items() if k in ("content-type", "link")}))

    def request(i: int) -> tuple[str, str, bytes, dict[str, str]]:
        if args.op in ("get", "ceiling"):
            return (
                "GET",
                f"{BASE}/entities/urn:ngsi-ld:Vehicle:{i % 1000}",
                b"",
                {"accept": "application/json", "link": link},
            )
        if args.op in ("query", "geo"):  # the wrk harness's queries (bench/run.py QUERY, GEO)
            params = urllib.parse.urlencode(QUERY if args.op == "query" else GEO)
            return "GET", f"{BASE}/entities?{params}", b"", {"accept": "application/json", "link": link}
        if args.op == "patch":
            return (
                "PATCH",
                f"{BASE}/entities/urn:ngsi-ld:Vehicle:{(i * 7919) % 1000}/attrs/fuel",
                json.dumps({"value": i % 100}).encode(),
                jh,
            )
        if args.op == "create":
            created[0] += 1
            return (
                "POST",
                f"{BASE}/entities",
                json.dumps(entity(f"urn:ngsi-ld:Vehicle:c{created[0]}", "Vehicle", i)).encode(),
                jh,
            )
        chunk = [entity(f"urn:ngsi-ld:Vehicle:b{i}-{j}", "Vehicle", j) for j in range(1000)]
        return "POST", f"{BASE}/entityOperations/upsert", json.dumps(chunk).encode(), jh

    async def burst(count: int, start: int) -> None:
        await send_all([request(start + i) for i in range(count)])

    async def send_all(reqs: list[tuple[str, str, bytes, dict[str, str]]]) -> None:
        count = len(reqs)
        if args.concurrency > 1:
            for k in range(0, count, args.concurrency):
                results = await asyncio.gather(*(c.call(*r) for r in reqs[k : k + args.concurrency]))
                for status, body, _ in results:
                    assert status < 300, (status, body[:300])
        else:
            for r in reqs:
                status, body, _ = await c.call(*r)
                assert status < 300, (status, body[:300])

    await burst(min(n, 200), 10_000_000)  # warm-up
    measured = [request(i) for i in range(n)]  # made before: the request bodies' JSON is the client's work
    prof = cProfile.Profile() if args.profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    _callgrind(["-z"], ["-i", "on"])
    await send_all(measured)
    _callgrind(["-d", "measured"], ["-i", "off"])
    if prof:
        prof.disable()
        prof.dump_stats(args.profile)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    per = n * (1000 if args.op == "batch" else 1)
    unit = "entity" if args.op == "batch" else "request"
    print(f"{args.op}: {n} requests, {cpu / per * 1e6:.1f} us CPU per {unit}, {per / wall:,.0f}/s wall")
    await inbox.put({"type": "lifespan.shutdown"})
    await task


def _callgrind(*commands: list[str]) -> None:
    """callgrind_control commands (each one a list of arguments) for this process, when it runs under callgrind."""
    if not os.environ.get(UNDER_CALLGRIND):
        return
    for command in commands:
        subprocess.run(["callgrind_control", *command, str(os.getpid())], check=True, capture_output=True)


def run_under_callgrind(argv: list[str], n: int, per_request: int) -> None:
    """This script again, under callgrind; prints the instructions of the measured requests, per request."""
    out = Path(tempfile.mkdtemp(prefix="agora-callgrind-"))
    child = [a for a in argv if a != "--callgrind"]
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}/cg.%p",
    ]
    # The notifier looks at the change feed by the clock (every 50 ms), which runs 50 times slower under valgrind
    # than the requests would: left at that, its looks would be counted as if the requests paid them.
    env = {**os.environ, UNDER_CALLGRIND: str(out), "AGORA_NOTIFY_POLL_INTERVAL": "60"}
    done = subprocess.run([*cmd, sys.executable, __file__, *child], env=env, capture_output=True, text=True)
    print(done.stdout.strip())
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    threads = measured_dump(out, "measured")
    if 1 not in threads:
        sys.exit(f"no measured dump in {out}")
    per = n * per_request
    others = sum(v for k, v in threads.items() if k != 1) / per
    print(
        f"{child[0]}: {threads[1] / per:,.0f} instructions per {'entity' if per_request > 1 else 'request'} "
        f"(callgrind, {n} requests, in process; event-loop thread; other threads {others:,.0f})"
    )


def measured_dump(out: Path, label: str) -> dict[int, int]:
    """Instructions per thread (1: the main thread, which runs the event loop) in the callgrind dump `label`. The
    other threads (SQLite's checkpointer) work by the clock, and under valgrind the clock runs 50 times slower than
    the requests would: their count is not a cost per request, so it is shown apart."""
    found: dict[int, int] = {}
    for dump in out.iterdir():
        text = dump.read_text(errors="replace")
        head = text[:3000]
        thread, summary = re.search(r"^thread: (\d+)", head, re.M), re.search(r"^summary: (\d+)", text, re.M)
        if f"desc: Trigger: dump {label}\n" in head and thread and summary:
            found[int(thread.group(1))] = int(summary.group(1))
    return found


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("op", choices=["get", "query", "geo", "patch", "create", "batch", "ceiling"])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--entities", type=int, default=1000, help="Vehicles loaded before the run (at least 1,000)")
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (asyncio.gather)")
    ap.add_argument("--profile", help="write cProfile stats here")
    ap.add_argument("--store", help="store URL (default: a new SQLite file); a Redis URL should name an empty db")
    ap.add_argument("--idle-subs", type=int, default=0, help="subscriptions that never match, made before the run")
    ap.add_argument("--callgrind", action="store_true", help="count instructions under valgrind (needs valgrind)")
    parsed = ap.parse_args()
    if parsed.callgrind:
        run_under_callgrind(sys.argv[1:], parsed.n, 1000 if parsed.op == "batch" else 1)
    else:
        asyncio.run(main(parsed))
