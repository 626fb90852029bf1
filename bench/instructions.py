"""Instructions per request of the broker and of the bare-Starlette ceiling, both under uvicorn, under callgrind.

    python bench/instructions.py [--n 300] [--ops get,patch,create,batch]

Each server (`agora serve`, 1 worker, a fresh SQLite file; then bench/ceiling.py with the bytes of the same GET)
runs under valgrind's callgrind with instrumentation off; this script loads 1,000 entities, warms up, switches
counting on (callgrind_control) only around N requests sent one after the other on one keep-alive connection, and
reads the dump. Instructions, unlike wall-clock or CPU time, repeat on a loaded machine: the figures compare two
versions of the code, and the ratio to the ceiling's instructions is the same comparison as bench/run.py's ratio
per CPU-second, without the noise (an instruction of SQLite and one of the interpreter do not cost the same time,
so re-measure the wall-clock rows with `make bench` on a quiet machine).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from bench.inproc import measured_dump  # noqa: E402
from bench.run import BASE, USER_CONTEXT, entity, free_port  # noqa: E402

Request = tuple[str, str, bytes, dict[str, str]]


@contextmanager
def under_callgrind(cmd: list[str], port: int, out: Path) -> Iterator[int]:
    """A server under callgrind, counting nothing until told; yields its pid once it answers on `port`."""
    vg = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}/cg.%p",
    ]
    env = {**os.environ, "AGORA_NOTIFY_POLL_INTERVAL": "60"}  # the clock runs slow under valgrind (bench/inproc.py)
    proc = subprocess.Popen([*vg, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}") from None
                time.sleep(0.5)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(120)


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def measured(pid: int, out: Path, label: str, conn: http.client.HTTPConnection, reqs: list[Request]) -> int:
    """Instructions the server spent on `reqs` (sent in order on `conn`)."""
    control(pid, "-z")
    control(pid, "-i", "on")
    for method, path, body, headers in reqs:
        send(conn, method, path, body, headers)
    control(pid, "-d", label)
    control(pid, "-i", "off")
    threads = measured_dump(out, label)
    if 1 not in threads:
        raise RuntimeError(f"no callgrind dump {label} in {out}")
    return threads[1]


def send(conn: http.client.HTTPConnection, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    conn.request(method, path, body=body or None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path} answered {resp.status}: {data[:300]!r}")
    return data


def broker_requests(link: str) -> dict[str, Callable[[int], Request]]:
    jh = {"content-type": "application/json", "link": link}
    return {
        "get": lambda i: ("GET", f"{BASE}/entities/urn:ngsi-ld:Vehicle:{i % 1000}", b"", {"link": link}),
        "patch": lambda i: (
            "PATCH",
            f"{BASE}/entities/urn:ngsi-ld:Vehicle:{(i * 7919) % 1000}/attrs/fuel",
            json.dumps({"value": i % 100}).encode(),
            jh,
        ),
        "create": lambda i: (
            "POST",
            f"{BASE}/entities",
            json.dumps(entity(f"urn:ngsi-ld:Vehicle:c{i}", "Vehicle", i)).encode(),
            jh,
        ),
        "batch": lambda i: (
            "POST",
            f"{BASE}/entityOperations/upsert",
            json.dumps([entity(f"urn:ngsi-ld:Vehicle:b{i}-{j}", "Vehicle", j) for j in range(1000)]).encode(),
            jh,
        ),
    }


def run(n: int, ops: list[str]) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="agora-instr-"))
    out = work / "dumps"
    out.mkdir()
    per: dict[str, float] = {}
    port = free_port()
    cmd = [
        sys.executable, "-c", "import sys; from broker.cli import main; sys.argv[0] = 'agora'; main()",
        "serve", "--port", str(port), "--store", f"sqlite:///{work / 'b.db'}", "--workers", "1",
        "--log-level", "warning",
    ]  # fmt: skip
    with under_callgrind(cmd, port, out) as pid:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("POST", f"{BASE}/jsonldContexts", json.dumps(USER_CONTEXT), {"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        rel = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        link = f"<http://127.0.0.1:{port}{resp.headers['location']}>; {rel}"
        makers = broker_requests(link)
        loaded = [entity(f"urn:ngsi-ld:Vehicle:{j}", "Vehicle", j) for j in range(1000)]
        send(conn, "POST", f"{BASE}/entityOperations/upsert", json.dumps(loaded).encode(), makers["batch"](0)[3])
        one = f"{BASE}/entities/urn:ngsi-ld:Vehicle:1"
        conn.request("GET", one, headers={"link": link})
        resp = conn.getresponse()
        body = resp.read()
        headers = {k: v for k, v in resp.getheaders() if k.lower() in ("content-type", "link")}
        for op in ops:
            count = max(1, n // 100) if op == "batch" else n
            make = makers[op]
            for i in range(min(count, 50)):  # warm-up, not counted
                send(conn, *make(10_000_000 + i))
            total = measured(pid, out, op, conn, [make(i) for i in range(count)])
            per[op] = total / (count * (1000 if op == "batch" else 1))
        conn.close()
    saved = work / "ceiling.json"
    saved.write_text(json.dumps({"body": body.decode(), "headers": headers}))
    port = free_port()
    with under_callgrind([sys.executable, str(HERE / "ceiling.py"), str(port), str(saved)], port, out) as pid:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(50):
            send(conn, "GET", one, b"", {})
        per["ceiling"] = measured(pid, out, "ceiling", conn, [("GET", one, b"", {})] * n) / n
        conn.close()
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="requests counted per operation (batch: n/100 of 1,000)")
    ap.add_argument("--ops", default="get,patch,create,batch")
    args = ap.parse_args()
    per = run(args.n, args.ops.split(","))
    ceiling = per["ceiling"]
    print(f"{'operation':<10} {'instructions':>14}  ratio to the ceiling")
    for op, value in per.items():
        unit = "/entity" if op == "batch" else "/request"
        ratio = f"{ceiling / value:.1%}" if op not in ("batch", "ceiling") else ""
        print(f"{op:<10} {value:>14,.0f} {unit:<9} {ratio}")


if __name__ == "__main__":
    main()
