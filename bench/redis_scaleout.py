"""Scale-out over Redis (issue 6): GET and PATCH throughput of 1 and 2 broker processes over one redis-server.

    .venv/bin/python bench/redis_scaleout.py [--duration 10] [--connections 32] [--out bench/REDIS_SCALEOUT.md]

Starts a redis-server (AOF, fsync every second) on a free port in a temporary directory, then for N = 1 and 2:
N `agora serve` processes on their own ports over an emptied Redis (as N hosts behind a load balancer), 1,000
Vehicles of the main harness's template, a warm-up, then two wrk processes at once (the load generators count the
requests), each on one broker (both on the one broker when N = 1), for GET one entity and PATCH one attribute.
Not `--workers N`: its workers share one listening socket, and the worker that wakes first accepts every
connection waiting, so wrk's 32 connections, opened at once and kept alive, often all land on one worker (seen
32/0 in 3 of 4 tries) and the run measures one process. Nothing is pinned: the broker processes, redis-server and
wrk share the machine's cores, as they would on one host.

Besides req/s it records the CPU the broker processes, redis-server (with its AOF rewrites) and wrk used per
request, and the Lua scripts' usec_per_call (INFO commandstats). Each broker process is independent, so N hosts
serve about N times what one process serves until Redis is the limit; the redis-server CPU per request says where
that limit is (one Redis core serves at most 1 / (CPU seconds per request)).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import (  # noqa: E402 - the repository root must be importable first
    BASE,
    BATCH,
    USER_CONTEXT,
    cpu_seconds,
    entity,
    free_port,
    http,
    lua_value,
    parse_wrk,
    stop,
    vehicle_id,
    wait_ready,
)

ENTITIES = 1000
GENERATORS = 2  # wrk processes, each with --connections connections: spread over the brokers, or all on the one


@dataclass
class Measure:
    round: int
    workers: int
    operation: str
    rate: float
    p95_ms: float
    broker_cpu: float  # CPU seconds of every broker process per wall second
    redis_cpu: float
    requests: int
    error: str
    script_us: float  # usec_per_call of the Lua scripts (EVALSHA), from INFO commandstats: Redis's own clock
    scripts_per_request: float
    wrk_cpu: float  # CPU seconds of the load generator per wall second

    @property
    def wrk_us_per_request(self) -> float:
        return self.wrk_cpu / self.rate * 1e6 if self.rate else 0.0

    @property
    def redis_us_per_request(self) -> float:
        return self.redis_cpu / self.rate * 1e6 if self.rate else 0.0

    @property
    def broker_us_per_request(self) -> float:
        return self.broker_cpu / self.rate * 1e6 if self.rate else 0.0


def process_tree(pid: int) -> list[int]:
    """The pid and its descendants (uvicorn's workers are children of the supervisor)."""
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if Path(f"/proc/{pid}").exists() else []:
        out += process_tree(int(child))
    return out


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


# The load generator's script: GET is wrk's static request (no Lua per request); PATCH cycles through requests
# formatted once (the entities in a scattered order, each PATCH giving the attribute a new value). No Lua runs per
# response: the failures are wrk's own count (summary.errors.status: answers of 400 and more). The lighter the
# generator, the more of the two shared cores the brokers get, in the 1- and the 2-process runs alike.
WRK_SCRIPT = """
if P.method == "GET" then
  wrk.method, wrk.path = "GET", P.path
  wrk.headers["Accept"] = "application/json"
  wrk.headers["Link"] = P.link
else
  local requests, count, i = {}, 0, 0
  function init(args)
    local headers = {["Content-Type"] = "application/json", ["Link"] = P.link}
    for k = 0, 2 * P.n - 1 do
      local n = (k * 7919 + P.offset) % P.n
      local path = P.base .. "/entities/" .. P.id_prefix .. n .. "/attrs/" .. P.attr
      requests[k + 1] = wrk.format("PATCH", path, headers, '{"value":' .. ((k + math.floor(k / P.n)) % 100) .. '}')
    end
    count = #requests
  end
  function request()
    i = i % count + 1
    return requests[i]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"p50_us":%.1f,"p95_us":%.1f,"p99_us":%.1f,"sample":""}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_command(workdir: Path, url: str, params: dict[str, object], n: int, args: Any) -> list[str]:
    """wrk with WRK_SCRIPT; load generator `n` starts its PATCH sequence elsewhere than the others, so that two
    generators do not PATCH the same entity at the same moment (they would measure optimistic retries)."""
    script = workdir / f"wrk-{n}-{time.monotonic_ns()}.lua"
    values = {**params, "offset": 104729 * (1 + 8 * n)}
    script.write_text("P = {" + ", ".join(f"{k} = {lua_value(v)}" for k, v in values.items()) + "}\n" + WRK_SCRIPT)
    return ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "60s", "-s", str(script), url]


def run_wrks(commands: list[list[str]], seconds: int) -> list[str]:
    """Run the load generators at once; their outputs."""
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for cmd in commands]
    return [proc.communicate(timeout=seconds + 120)[0] for proc in procs]


def cpu_with_children(pid: int) -> float:
    """utime + stime of a process and of its children it waited for (redis-server's AOF rewrites are forks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """User and system CPU seconds of the ended child processes waited for (here: the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def redis_cli(redis_url: str, *args: str) -> str:
    return subprocess.run(["redis-cli", "-u", redis_url, *args], check=True, capture_output=True, text=True).stdout


def script_stats(redis_url: str) -> tuple[int, float]:
    """(calls, total usec) of EVALSHA and EVAL since the last CONFIG RESETSTAT. Commands run inside a script are
    counted in the script's time (and once more under their own names, which are therefore left out)."""
    calls, usec = 0, 0.0
    for line in redis_cli(redis_url, "INFO", "commandstats").splitlines():
        if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
            fields = dict(part.split("=") for part in line.split(":", 1)[1].split(","))
            calls, usec = calls + int(fields["calls"]), usec + float(fields["usec"])
    return calls, usec


def measure(
    workdir: Path,
    brokers: list[tuple[str, int]],
    redis: tuple[str, int],
    operation: str,
    scenario: str,
    params: dict[str, object],
    args: argparse.Namespace,
) -> Measure:
    """GENERATORS wrk processes at once, spread over the brokers (all on the one broker when there is one)."""
    redis_url, redis_pid = redis
    commands = [wrk_command(workdir, brokers[n % len(brokers)][0], params, n, args) for n in range(GENERATORS)]
    redis_cli(redis_url, "CONFIG", "RESETSTAT")
    pids = [pid for _, pid in brokers]
    cpu0, rcpu0, wcpu0, t0 = brokers_cpu(pids), cpu_with_children(redis_pid), children_cpu(), time.perf_counter()
    results = [parse_wrk(out) for out in run_wrks(commands, args.duration)]
    wall = time.perf_counter() - t0
    broker_cpu, redis_cpu = (brokers_cpu(pids) - cpu0) / wall, (cpu_with_children(redis_pid) - rcpu0) / wall
    wrk_cpu = (children_cpu() - wcpu0) / wall  # the wrk runs are the children that ended meanwhile
    calls, usec = script_stats(redis_url)
    requests = sum(r.requests for r in results)
    per_call, per_request = (usec / calls if calls else 0.0), (calls / requests if requests else 0.0)
    row = Measure(
        args.round,
        len(brokers),
        operation,
        sum(r.rate for r in results),
        max(r.p95_ms for r in results),
        broker_cpu,
        redis_cpu,
        requests,
        "; ".join(r.error for r in results if r.error),
        per_call,
        per_request,
        wrk_cpu,
    )
    status = f"FAILED ({row.error})" if row.error else "ok"
    print(
        f"  round {args.round}  {len(brokers)} process(es)  {operation:<20} {row.rate:>8,.0f} req/s  "
        f"p95 {row.p95_ms:6.2f} ms  "
        f"brokers {broker_cpu:.2f} cores, redis {row.redis_us_per_request:.0f} us/req, "
        f"script {row.script_us:.1f} us x {row.scripts_per_request:.2f}, wrk {row.wrk_us_per_request:.0f} us/req"
        f"  {status}"
    )
    return row


def brokers_cpu(pids: list[int]) -> float:
    return sum(tree_cpu(pid) for pid in pids)


def bench_workers(
    workdir: Path, redis_url: str, redis_pid: int, workers: int, args: argparse.Namespace
) -> list[Measure]:
    """`workers` separate `agora serve` processes (each its own port, as hosts behind a load balancer)."""
    subprocess.run(["redis-cli", "-u", redis_url, "FLUSHALL"], check=True, capture_output=True)
    agora = Path(sys.executable).parent / "agora"
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(workers):
            port = free_port()
            cmd = [str(agora), "serve", "--port", str(port), "--store", redis_url, "--log-level", "warning"]
            procs.append((f"http://127.0.0.1:{port}", subprocess.Popen(cmd, stdout=subprocess.DEVNULL)))
        for url, proc in procs:
            wait_ready(f"{url}{BASE}/info/sourceIdentity", proc)
        url = procs[0][0]
        status, _, headers = http("POST", f"{url}{BASE}/jsonldContexts", USER_CONTEXT)
        if status != 201:
            raise RuntimeError(f"POST /jsonldContexts answered {status}")
        link = f'<{url}{headers["location"]}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        for start in range(0, ENTITIES, BATCH):
            chunk = [entity(vehicle_id(i), "Vehicle", i) for i in range(start, min(start + BATCH, ENTITIES))]
            status, body, _ = http("POST", f"{url}{BASE}/entityOperations/upsert", chunk, {"Link": link})
            if status not in (201, 204):
                raise RuntimeError(f"batch upsert answered {status}: {body[:300]!r}")
        one = f"{BASE}/entities/{vehicle_id(1)}"
        warm = argparse.Namespace(**{**vars(args), "duration": 2})
        get: dict[str, object] = {"method": "GET", "path": one, "link": link}
        run_wrks([wrk_command(workdir, u, get, 0, warm) for u, _ in procs], 2)
        patch: dict[str, object] = {
            "method": "PATCH",
            "base": BASE,
            "link": link,
            "n": ENTITIES,
            "id_prefix": "urn:ngsi-ld:Vehicle:",
            "attr": "fuel",
        }
        scenarios: dict[str, tuple[str, dict[str, object]]] = {
            "get": ("GET one entity", get),
            "patch": ("PATCH one attribute", patch),
        }
        brokers = [(u, proc.pid) for u, proc in procs]
        return [
            measure(workdir, brokers, (redis_url, redis_pid), name, scenario, params, args)
            for scenario, (name, params) in scenarios.items()
            if scenario in args.operations
        ]
    finally:
        for _, proc in procs:
            stop(proc)


def report(rows: list[Measure], args: argparse.Namespace, load_at_start: float) -> str:
    load = os.getloadavg()
    lines = [
        "# Scale-out over Redis: 1 and 2 broker processes",
        "",
        f"{os.cpu_count()} cores, load average {load_at_start:.2f} at the start and {load[0]:.2f} at the end; "
        f"{GENERATORS} wrk processes (-t1 -c{args.connections} each) spread over the broker processes (separate "
        f"`agora serve` processes on their own ports), {args.duration} s per run, {ENTITIES:,} Vehicles, "
        "redis-server with appendonly yes, appendfsync everysec.",
        "",
        "| round | processes | operation | req/s | p95 ms | broker CPU (cores) | broker µs CPU/req "
        "| redis CPU (cores, with AOF rewrites) | redis µs CPU/req | Lua script µs per call, calls per req "
        "| wrk µs CPU/req | ceiling of one Redis core (req/s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ceiling = 1e6 / r.redis_us_per_request if r.redis_us_per_request else 0
        lines.append(
            f"| {r.round} | {r.workers} | {r.operation} | {r.rate:,.0f}{' FAILED ' + r.error if r.error else ''} "
            f"| {r.p95_ms:.2f} | {r.broker_cpu:.2f} | {r.broker_us_per_request:,.0f} | {r.redis_cpu:.2f} "
            f"| {r.redis_us_per_request:,.0f} | {r.script_us:.1f}, {r.scripts_per_request:.2f} "
            f"| {r.wrk_us_per_request:,.0f} | {ceiling:,.0f} |"
        )
    lines.append("")
    for operation in dict.fromkeys(r.operation for r in rows):
        measured, per_cpu = [], []
        for n in sorted({r.round for r in rows}):
            one = next((r for r in rows if (r.round, r.operation, r.workers) == (n, operation, 1)), None)
            two = next((r for r in rows if (r.round, r.operation, r.workers) == (n, operation, 2)), None)
            if one and two and one.rate and two.broker_us_per_request:
                measured.append(two.rate / one.rate)
                per_cpu.append(one.broker_us_per_request / two.broker_us_per_request)
        if measured:
            lines.append(
                f"- {operation}: 2 processes / 1 process = {statistics.median(measured):.2f} measured (median of "
                f"{len(measured)} rounds: {', '.join(f'{m:.2f}' for m in measured)}); requests per broker "
                f"CPU-second 2 / 1 = {statistics.median(per_cpu):.2f}, so with a core for each process: "
                f"{2 * statistics.median(per_cpu):.2f}"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help=f"connections of each of the {GENERATORS} wrk processes (default 32: with auto-pipelining a process "
        "needs about that many requests in flight to fill its core, decision record 0045)",
    )
    parser.add_argument("--out", help="also write the Markdown report to this file")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts (default 1 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every process count, one after the other")
    parser.add_argument(
        "--operations", nargs="+", choices=["get", "patch"], default=["get", "patch"], help="default: both"
    )
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="agora-redis-bench-") as tmp:
        work = Path(tmp)
        port = free_port()
        options = ["--appendonly", "yes", "--appendfsync", "everysec", "--logfile", str(work / "redis.log")]
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "", *options],
            stdout=subprocess.DEVNULL,
        )
        try:
            redis_url = f"redis://127.0.0.1:{port}/0"
            for _ in range(200):
                if (
                    subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True).stdout.strip()
                    == b"PONG"
                ):
                    break
                time.sleep(0.05)
            rows = []
            for n in range(1, args.rounds + 1):  # 1, 2, 1, 2, ...: a change of the machine's load hits both
                for workers in args.workers:
                    args.round = n
                    rows += bench_workers(work, redis_url, redis.pid, workers, args)
        finally:
            redis.terminate()
            redis.wait(30)
    text = report(rows, args, load_at_start)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
