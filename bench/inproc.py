"""In-process driver: the broker's ASGI app called directly (no sockets, no uvicorn), to profile one operation.

    python bench/inproc.py get|patch|create|batch [--n 2000] [--profile out.prof] [--store redis://127.0.0.1:6379/0]

Prints microseconds of CPU per request. The broker's own share of a request, without the HTTP server's: the
figure to compare before and after a change to the hot path (the wrk harness in bench/run.py gives the whole).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.run import USER_CONTEXT, entity  # noqa: E402
from broker.http.app import create_app  # noqa: E402
from broker.settings import Settings  # noqa: E402

BASE = "/ngsi-ld/v1"


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
    batch = [entity(f"urn:ngsi-ld:Vehicle:{i}", "Vehicle", i) for i in range(1000)]
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

    def request(i: int) -> tuple[str, str, bytes, dict[str, str]]:
        if args.op == "get":
            return (
                "GET",
                f"{BASE}/entities/urn:ngsi-ld:Vehicle:{i % 1000}",
                b"",
                {"accept": "application/json", "link": link},
            )
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
        reqs = [request(start + i) for i in range(count)]
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
    prof = cProfile.Profile() if args.profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    await burst(n, 0)
    if prof:
        prof.disable()
        prof.dump_stats(args.profile)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    per = n * (1000 if args.op == "batch" else 1)
    unit = "entity" if args.op == "batch" else "request"
    print(f"{args.op}: {n} requests, {cpu / per * 1e6:.1f} us CPU per {unit}, {per / wall:,.0f}/s wall")
    await inbox.put({"type": "lifespan.shutdown"})
    await task


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("op", choices=["get", "patch", "create", "batch"])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (asyncio.gather)")
    ap.add_argument("--profile", help="write cProfile stats here")
    ap.add_argument("--store", help="store URL (default: a new SQLite file); a Redis URL should name an empty db")
    ap.add_argument("--idle-subs", type=int, default=0, help="subscriptions that never match, made before the run")
    asyncio.run(main(ap.parse_args()))
