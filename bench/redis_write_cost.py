"""What one PATCH costs redis-server, measured so that the load of the machine hardly matters (issue 6).

    .venv/bin/python bench/redis_write_cost.py [--writes 5000] [--repeats 6]

Starts a redis-server (AOF, fsync every second) on a free port in a temporary directory, then records every Lua
script call RedisStore makes while it writes 1,000 Vehicles of the main harness's template (canonical form) and
then PATCHes one attribute of one of them `--writes` times, one write after the other, with history recorded. It then
replays the recorded calls on the emptied server, pipelined 100 at a time (so network round trips hardly count),
`--repeats` times, and prints the best run's EVALSHA usec_per_call (INFO commandstats: Redis's own clock around
the script) and main-thread CPU per PATCH script (INFO cpu, which includes writing the AOF). The same calls on the
same state each time: two runs differ by the machine's noise only, and the best of several is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import redis  # noqa: E402 - the repository root must be importable first

from bench.run import entity, free_port, vehicle_id  # noqa: E402
from broker.core.model import Entity  # noqa: E402
from broker.store.base import WritePlan  # noqa: E402
from broker.store.redis import RedisStore  # noqa: E402

EX = "https://example.org/agora-bench/"
STAMP = "2026-11-26T00:00:00.000000Z"
ENTITIES = 1000
Call = tuple[list[str], list[Any]]


def canonical(i: int) -> Entity:
    """The harness's Vehicle in the store's canonical form (expanded names, instance lists, system times)."""
    made = entity(vehicle_id(i), "Vehicle", i)
    attrs: dict[str, Any] = {}
    for name, value in made.items():
        if name not in ("id", "type"):
            instances = cast(list[dict[str, Any]], value if isinstance(value, list) else [value])
            attrs[EX + name] = [{**inst, "createdAt": STAMP, "modifiedAt": STAMP} for inst in instances]
    return {"id": made["id"], "type": [EX + "Vehicle"], "attrs": attrs, "createdAt": STAMP, "modifiedAt": STAMP}


def patch(eid: str, k: int) -> Any:
    """What core's Partial Attribute Update does to the entity: a new fuel value, new modifiedAt."""

    def plan(current: dict[str, Entity | None]) -> WritePlan[None]:
        now = current[eid]
        assert now is not None
        fuel = now["attrs"][EX + "fuel"][0]
        fuel["value"] = (k * 37) % 100
        fuel["modifiedAt"] = now["modifiedAt"] = f"2026-11-26T00:{k // 60 % 60:02d}:{k % 60:02d}.000000Z"
        return WritePlan({eid: now})

    return plan


def put(entities: dict[str, Entity | None]) -> Any:
    return lambda _current: WritePlan(entities)


async def record(url: str, writes: int) -> tuple[list[Call], list[Call]]:
    """The script calls of loading the Vehicles, and of the PATCHes."""
    store = RedisStore.from_url(url)
    await store.open()
    calls: list[Call] = []
    run = store._run

    async def recording(script: Any) -> Any:
        calls.append((list(script.keys.keys), list(script.argv())))
        return await run(script)

    store._run = recording  # type: ignore[method-assign]
    try:
        for start in range(0, ENTITIES, 100):
            chunk: dict[str, Entity | None] = {vehicle_id(i): canonical(i) for i in range(start, start + 100)}
            await store.write("", list(chunk), put(chunk), create_tenant=True)
        loaded = len(calls)
        for k in range(writes):
            eid = vehicle_id(k * 7919 % ENTITIES)
            await store.write("", [eid], patch(eid, k))
    finally:
        await store.close()
    return calls[:loaded], calls[loaded:]


def replay(client: redis.Redis, script: str, load: list[Call], patches: list[Call]) -> tuple[float, float]:
    """(EVALSHA usec_per_call, main-thread CPU µs) per PATCH script, replayed on an emptied server."""
    client.flushall()
    sha = client.script_load(script)
    for chunk in (load[n : n + 100] for n in range(0, len(load), 100)):
        pipe = client.pipeline(transaction=False)
        for keys, args in chunk:
            pipe.evalsha(sha, len(keys), *keys, *args)
        if not all(r == 1 for r in pipe.execute()):
            raise RuntimeError("a recorded load script did not apply")
    client.config_resetstat()
    cpu0 = main_thread_cpu(client)
    for chunk in (patches[n : n + 100] for n in range(0, len(patches), 100)):
        pipe = client.pipeline(transaction=False)
        for keys, args in chunk:
            pipe.evalsha(sha, len(keys), *keys, *args)
        if not all(r == 1 for r in pipe.execute()):
            raise RuntimeError("a recorded PATCH script did not apply: the replay is not the recorded sequence")
    cpu = main_thread_cpu(client) - cpu0
    stats = client.info("commandstats")["cmdstat_evalsha"]
    return float(stats["usec_per_call"]), cpu / len(patches) * 1e6


def main_thread_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5000, help="PATCHes recorded and replayed (default 5000)")
    parser.add_argument("--repeats", type=int, default=6, help="replays; the best is reported (default 6)")
    args = parser.parse_args(argv)
    from broker.store.redis import _APPLY

    with tempfile.TemporaryDirectory(prefix="agora-redis-cost-") as tmp:
        port = free_port()
        options = ["--appendonly", "yes", "--appendfsync", "everysec", "--logfile", f"{tmp}/redis.log"]
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "", *options],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            for _ in range(200):
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    time.sleep(0.05)
            load, patches = asyncio.run(record(f"redis://127.0.0.1:{port}/0", args.writes))
            runs = [replay(client, _APPLY, load, patches) for _ in range(args.repeats)]
            usec, cpu = min(runs)
            size = sum(len(a) if isinstance(a, bytes | str) else len(str(a)) for a in patches[-1][1])
            print(
                f"one PATCH script: {len(patches[-1][1])} arguments, {size:,} bytes, {len(patches[-1][0])} keys; "
                f"best of {args.repeats} replays of {len(patches)}: EVALSHA {usec:.1f} us/call, "
                f"main-thread CPU {cpu:.1f} us per PATCH"
            )
            client.close()
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
