"""Benchmark harness of issue 9: the broker against the ceiling of its own stack, driven by wrk.

The broker (`agora serve`, 1 worker, fresh SQLite file) and the ceiling (bench/ceiling.py) run on core 1, wrk and
this script on core 0. Every wrk run appends bench/lua/report.lua, whose done() prints one `BENCH_JSON {...}` line;
a scenario with a non-2xx answer or a socket error is reported as failed and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as `python bench/run.py`: the bench package is importable too
    sys.path.insert(0, str(HERE.parent))

from bench.gtfs_feed import write_feed  # noqa: E402 - needs the path above
from bench.issuer import OPERATOR_ROLE, running_issuer  # noqa: E402

LUA = HERE / "lua"
BASE = "/ngsi-ld/v1"
LOAD_CORE, SERVER_CORE = "0", "1"
BATCH = 1000
WRITE_CONNS = 4  # batch upsert: each request carries 1,000 entities
USER_CONTEXT = {
    "@context": {
        name: f"https://example.org/agora-bench/{name}"
        for name in ("Vehicle", "Car", "speed", "fuel", "brand", "temperature", "mileage", "status", "owner")
    }
}
ANALYSIS = "## What we see"  # the hand-written section of RESULTS.md, kept when a run rewrites the table
QUERY = {"type": "Vehicle", "q": "speed>50;fuel<30", "limit": "20"}
GEO = {
    "type": "Vehicle",
    "georel": "near;maxDistance==2000",
    "geometry": "Point",
    "coordinates": "[2.35,48.85]",
    "limit": "20",
}


@dataclass
class Row:
    """One line of the table; `result` is preformatted for rows that are not wrk runs (memory, start-up)."""

    operation: str
    size: int | None
    rate: float | None = None
    unit: str = "req/s"
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    ratio: float | None = None
    result: str = ""
    error: str = ""
    note: str = ""
    cpu: float | None = None
    cpu_ratio: float | None = None  # requests per server CPU-second over the ceiling's


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    sample: str = ""
    server_cpu: float | None = None  # CPU seconds of the server per wall second of the run

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error(self) -> str:
        if self.requests == 0:
            return "no request completed"
        if self.non2xx or self.socket_errors:
            return f"{self.non2xx} non-2xx, {self.socket_errors} socket errors; last: {self.sample}".strip()
        return ""


def parse_wrk(output: str) -> WrkResult:
    """The BENCH_JSON line that bench/lua/report.lua prints from done()."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            d = json.loads(line[len("BENCH_JSON ") :])
            return WrkResult(
                requests=int(d["requests"]),
                duration_s=d["duration_us"] / 1e6,
                p50_ms=d["p50_us"] / 1000,
                p95_ms=d["p95_us"] / 1000,
                p99_ms=d["p99_us"] / 1000,
                non2xx=int(d["non2xx"]),
                socket_errors=sum(int(d[k]) for k in ("connect", "read", "write", "timeout")),
                sample=str(d.get("sample", "")),
            )
    raise ValueError("wrk printed no BENCH_JSON line:\n" + output[-2000:])


def _num(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def format_table(rows: list[Row]) -> str:
    head = (
        "| operation | data size | throughput | p50 ms | p95 ms | p99 ms | ratio to ceiling | server CPU "
        "| ratio per CPU-second | notes |"
    )
    lines = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in rows:
        result = r.result or ("" if r.rate is None else f"{r.rate:,.{0 if r.rate >= 10 else 2}f} {r.unit}")
        note = f"FAILED: {r.error}" if r.error else r.note
        size = "" if r.size is None else f"{r.size:,}"
        cells = [r.operation, size, result, _num(r.p50, 2), _num(r.p95, 2), _num(r.p99, 2), _pct(r.ratio), _pct(r.cpu)]
        cells += [_pct(r.cpu_ratio), note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py)`."""
    frame = re.sub(r":\d+\)$", ")", frame)
    return re.sub(r"\(.*(?:site-packages|python3\.\d+|agora-head|main)/", "(", frame)


def profile_summary(collapsed: str, top: int = 12, focus: str = "(broker/") -> str:
    """The functions that hold the most samples of a py-spy `--format raw` (collapsed stacks) profile.

    Self time counts every function; inclusive time only the frames whose text holds `focus` (the broker's own
    code), since the frames of uvicorn and Starlette above them hold nearly every sample.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            if focus in f:
                total[f] += n
    if not samples:
        return "(no samples)"
    lines = [f"{samples} samples. Self time (the function itself):", ""]
    lines += [f"- {c / samples:5.1%}  {f}" for f, c in own.most_common(top)]
    lines += ["", f"Inclusive time of the frames in {focus.strip('(')} (the function and what it calls):", ""]
    lines += [f"- {c / samples:5.1%}  {f}" for f, c in total.most_common(top)]
    return "\n".join(lines)


def code_version(python: str) -> str:
    """Where the broker that was measured comes from: the commit, and whether broker/ had uncommitted changes."""
    where = subprocess.run(
        [python, "-P", "-c", "import broker; print(broker.__file__)"], capture_output=True, text=True
    )
    src = Path(where.stdout.strip() or HERE).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=src).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return f"broker code from {src} (not a git checkout)"
    dirty = " with uncommitted changes in broker/" if git("status", "--porcelain", "--", ".") else ""
    return f"broker code: commit {commit}{dirty}"


def machine_header(python: str) -> str:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    pyver = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True)
    wrk_ver = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0]
    return (
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {code_version(python)}\n"
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB memory, {platform.system()} "
        f"{platform.release()}\n"
        f"- Python {pyver.stdout.strip()}; load generator {wrk_ver} on core {LOAD_CORE}; broker (1 uvicorn worker, "
        f"SQLite store) and ceiling on core {SERVER_CORE}"
    )


# ---- data -----------------------------------------------------------------------------------------------------


def entity(eid: str, etype: str, i: int) -> dict[str, object]:
    """The template of the peers' benchmarks: six Properties (two with two instances), a Relationship, a Point."""
    return {
        "id": eid,
        "type": etype,
        "speed": [
            {"type": "Property", "value": (i * 37) % 120, "datasetId": "urn:ngsi-ld:Dataset:gps"},
            {"type": "Property", "value": (i * 41) % 120, "datasetId": "urn:ngsi-ld:Dataset:obd"},
        ],
        "fuel": {"type": "Property", "value": (i * 13) % 100, "unitCode": "P1"},
        "brand": {"type": "Property", "value": ("Renault", "Peugeot", "Citroen", "Iveco")[i % 4]},
        "temperature": [
            {"type": "Property", "value": 20 + (i % 10) / 2},
            {"type": "Property", "value": 18 + (i % 7) / 2, "datasetId": "urn:ngsi-ld:Dataset:rear"},
        ],
        "mileage": {"type": "Property", "value": i * 11, "observedAt": "2026-01-01T00:00:00Z"},
        "status": {"type": "Property", "value": ("moving", "parked", "service")[i % 3]},
        "owner": {"type": "Relationship", "object": f"urn:ngsi-ld:Person:{i % 500}"},
        "location": {
            "type": "GeoProperty",
            "value": {
                "type": "Point",
                "coordinates": [2.25 + (i * 7919 % 1000) / 5000, 48.80 + (i * 104729 % 1000) / 10000],
            },
        },
    }


def split_template(etype: str) -> tuple[str, str]:
    """The JSON text of one entity cut around its id, for Lua to glue an id in between."""
    text = json.dumps(entity("@ID@", etype, 7), separators=(",", ":"))
    pre, post = text.split("@ID@")
    return pre, post


def vehicle_id(i: int) -> str:
    return f"urn:ngsi-ld:Vehicle:{i}"


def lua_value(v: object) -> str:
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string literal is a valid Lua string literal for this ASCII text


# ---- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """Seconds until `url` answers 200; raises when the process dies or the time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.005)
    raise RuntimeError(f"no 200 from {url} within {timeout} s")


@contextmanager
def server(
    cmd: list[str], ready_url: str, env: dict[str, str] | None = None, core: str = SERVER_CORE
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    environment = {**os.environ, **(env or {})}
    proc = subprocess.Popen(["taskset", "-c", core, *cmd], stdout=subprocess.DEVNULL, env=environment)
    try:
        yield proc, wait_ready(ready_url, proc)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat (0 when there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ---- the run --------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    duration: int
    connections: int
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    ceiling: float | None = None
    ceiling_per_cpu: float | None = None
    runs: int = 0
    server_pid: int = 0  # the process whose CPU share each wrk run records
    profile_dir: Path | None = None  # with --profile: py-spy samples the broker during every wrk run
    last_profile: Path | None = None
    startup_loaded: int = 0  # the entities bulk-loaded into startup.db (startup_rows)

    def wrk(
        self,
        url: str,
        scenario: str,
        params: dict[str, object],
        connections: int | None = None,
        duration: int | None = None,
    ) -> WrkResult:
        self.runs += 1
        script = self.workdir / f"run{self.runs}-{scenario}.lua"
        prelude = "P = {" + ", ".join(f"{k} = {lua_value(v)}" for k, v in params.items()) + "}\n"
        script.write_text(prelude + (LUA / f"{scenario}.lua").read_text() + (LUA / "report.lua").read_text())
        cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections or self.connections}"]
        seconds = duration or self.duration
        cmd += [f"-d{seconds}s", "--timeout", "120s", "-s", str(script), url]
        spy = self.start_profile(script.stem, seconds)
        cpu0, t0 = cpu_seconds(self.server_pid), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300)
        if spy is not None:
            spy.wait(60)
        res = parse_wrk(out.stdout + out.stderr)
        res.server_cpu = (cpu_seconds(self.server_pid) - cpu0) / (time.perf_counter() - t0)
        return res

    def start_profile(self, name: str, seconds: int) -> subprocess.Popen[bytes] | None:
        self.last_profile = None
        if self.profile_dir is None or self.server_pid == 0:
            return None
        self.last_profile = self.profile_dir / f"{name}.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = ["taskset", "-c", LOAD_CORE, spy, "record", "--pid", str(self.server_pid), "--format", "raw"]
        cmd += ["-o", str(self.last_profile), "-d", str(seconds), "-r", "100", "--nonblocking"]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def record(
        self, operation: str, size: int | None, res: WrkResult, unit: str = "req/s", per_req: int = 1, note: str = ""
    ) -> Row:
        rate = res.rate * per_req
        ratio = rate / self.ceiling if self.ceiling and unit == "req/s" else None
        row = Row(operation, size, rate, unit, res.p50_ms, res.p95_ms, res.p99_ms, ratio, error=res.error, note=note)
        row.cpu = res.server_cpu
        if ratio is not None and res.server_cpu and self.ceiling_per_cpu:
            row.cpu_ratio = rate / res.server_cpu / self.ceiling_per_cpu
        self.rows.append(row)
        if self.profile_dir and self.last_profile and self.last_profile.exists():
            title = f"## {operation} ({size or '-'}): {rate:,.0f} {unit}, profile {self.last_profile.name}\n\n"
            with open(self.profile_dir / "summary.md", "a") as f:
                f.write(title + profile_summary(self.last_profile.read_text()) + "\n\n")
        status = f"FAILED ({row.error})" if row.error else "ok"
        print(
            f"  {operation:<34} {size or '':>7}  {rate:>9,.0f} {unit:<10} p95 {res.p95_ms:7.2f} ms  {status}",
            flush=True,
        )
        return row


class Broker:
    def __init__(self, python: Path, db: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        agora = python.parent / "agora"
        self.cmd = [
            str(agora),
            "serve",
            "--port",
            str(self.port),
            "--store",
            f"sqlite:///{db}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ]
        self.ready = f"{self.url}{BASE}/info/sourceIdentity"
        self.loaded = 0
        self.link = ""
        self.auth: dict[str, str] = {}  # the credential header of a secured broker (secured_rows)

    def use_user_context(self) -> None:
        """Host the benchmark's user @context on the broker and send it with every request (Link header)."""
        status, _, headers = http("POST", f"{self.url}{BASE}/jsonldContexts", USER_CONTEXT, self.auth)
        if status != 201:
            raise RuntimeError(f"POST /jsonldContexts answered {status}")
        ctx_url = self.url + headers["location"]
        self.link = f'<{ctx_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

    def upsert(self, ids: range, etype: str = "Vehicle") -> None:
        for start in range(ids.start, ids.stop, BATCH):
            chunk = [entity(f"urn:ngsi-ld:{etype}:{i}", etype, i) for i in range(start, min(start + BATCH, ids.stop))]
            headers = {"Link": self.link, **self.auth}
            status, body, _ = http("POST", f"{self.url}{BASE}/entityOperations/upsert", chunk, headers)
            if status not in (201, 204):
                raise RuntimeError(f"batch upsert answered {status}: {body[:300]!r}")

    def load_to(self, n: int) -> float:
        """Loads Vehicles up to n in all; returns the entities/s of the load."""
        start = time.perf_counter()
        self.upsert(range(self.loaded, n))
        took = time.perf_counter() - start
        rate = (n - self.loaded) / took if took else 0.0
        self.loaded = n
        return rate


def queries_and_memory(bench: Bench, broker: Broker, pid: int, n: int, quick: bool) -> None:
    """Query and geo rows at one data size, one connection (the latency of one client), then the broker's RSS.

    A run lasts long enough for about ten answers when one answer takes longer than a tenth of the duration
    (capped at 60 s, 10 s with --quick), so that slow queries still yield a percentile.
    """
    for name, params in (("query type + q (2 conditions)", QUERY), ("geo near 2 km", GEO)):
        path = path_with(params)
        start = time.perf_counter()
        status, body, _ = http("GET", broker.url + path, headers={"Link": broker.link})
        one = time.perf_counter() - start
        got = len(json.loads(body)) if status == 200 else -1
        seconds = max(bench.duration, min(10 if quick else 60, math.ceil(10 * one)))
        res = bench.wrk(broker.url, "get", {"path": path, "link": broker.link}, connections=1, duration=seconds)
        row = bench.record(name, n, res, note=f"1 connection, {seconds} s; limit=20, {got} returned")
        if got != 20 and not row.error:
            row.error = f"expected 20 entities, got {got} (status {status})"
    memory_row(bench, pid, n, "after the two queries")


METER = "urn:ngsi-ld:Meter:bench"
HISTORY_START = "2026-01-01T00:00:00Z"


def temporal_rows(bench: Bench, broker: Broker, instances: int) -> None:
    """The history of one attribute with `instances` instances, one a minute, posted through the temporal API,
    then its hourly averages (issue 5: under 50 ms at p95 for 100,000 instances)."""
    start = datetime.fromisoformat(HISTORY_START)
    chunk = 10_000
    began = time.perf_counter()
    for first in range(0, instances, chunk):
        body = {
            "id": METER,
            "type": "Meter",
            "load": [
                {"type": "Property", "value": round(50 + 40 * math.sin(i / 300), 3), "observedAt": _minute(start, i)}
                for i in range(first, min(first + chunk, instances))
            ],
        }
        status, text, _ = http("POST", f"{broker.url}{BASE}/temporal/entities", body)
        if status not in (201, 204):
            raise RuntimeError(f"POST /temporal/entities answered {status}: {text[:300]!r}")
    rate = instances / (time.perf_counter() - began)
    print(f"  {instances:,} temporal instances posted at {rate:,.0f} instances/s", flush=True)
    bench.rows.append(
        Row("temporal: instances posted, 10,000 per request", instances, rate=rate, unit="instances/s", note="1 client")
    )
    params = {
        "format": "aggregatedValues",
        "aggrMethods": "avg",
        "aggrPeriodDuration": "PT1H",
        "timerel": "between",
        "timeAt": HISTORY_START,
        "endTimeAt": _minute(start, instances),
    }
    path = f"{BASE}/temporal/entities/{METER}?" + urllib.parse.urlencode(params)
    status, answer, _ = http("GET", broker.url + path)
    periods = len(json.loads(answer)["load"]["avg"]) if status == 200 else -1
    res = bench.wrk(broker.url, "get", {"path": path, "link": ""}, connections=1)
    row = bench.record("temporal: hourly avg of one attribute", instances, res, note=f"1 connection; {periods} periods")
    if periods != -(-instances // 60) and not row.error:
        row.error = f"expected {-(-instances // 60)} hourly periods, got {periods} (status {status})"
    path = f"{BASE}/temporal/entities/{METER}?lastN=100"
    bench.record("temporal: lastN=100 instances", instances, bench.wrk(broker.url, "get", {"path": path, "link": ""}))


def _minute(start: datetime, i: int) -> str:
    return (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def memory_row(bench: Bench, pid: int, n: int, when: str) -> None:
    mem = rss_mb(pid)
    bench.rows.append(Row(f"resident memory (RSS) {when}", n, result=f"{mem:,.0f} MB"))
    print(f"  RSS {when}: {mem:,.0f} MB", flush=True)


def path_with(params: dict[str, str]) -> str:
    return f"{BASE}/entities?" + urllib.parse.urlencode(params, safe=";=,")


def notification_rows(bench: Bench, python: Path, broker: Broker, changes: int) -> None:
    """Notifications delivered per second to a local receiver (issue 4: at least 2,000/s)."""
    port = free_port()
    receiver = [str(python), str(HERE / "receiver.py"), str(port)]
    with server(receiver, f"http://127.0.0.1:{port}/count", core=LOAD_CORE):
        sub = {
            "type": "Subscription",
            "entities": [{"type": "Notified"}],
            "notification": {"format": "keyValues", "endpoint": {"uri": f"http://127.0.0.1:{port}/notify"}},
        }
        status, text, _ = http("POST", f"{broker.url}{BASE}/subscriptions", sub, {"Link": broker.link})
        if status != 201:
            raise RuntimeError(f"POST /subscriptions answered {status}: {text[:300]!r}")
        time.sleep(1.0)  # the notifier sees the subscription at its next look at the feed
        began = time.perf_counter()
        broker.upsert(range(changes), "Notified")
        written = time.perf_counter() - began
        at_write_end = json.loads(http("GET", f"http://127.0.0.1:{port}/count")[1])["entities"]
        delivered = 0
        while time.perf_counter() - began < 300:
            delivered = json.loads(http("GET", f"http://127.0.0.1:{port}/count")[1])["entities"]
            if delivered >= changes:
                break
            time.sleep(0.05)
        took = time.perf_counter() - began
        after = (delivered - at_write_end) / (took - written) if took > written else 0.0
        row = Row(
            "notifications delivered (HTTP, 1 subscription)",
            changes,
            rate=delivered / took,
            unit="notifications/s",
            note=f"end to end, with the batch upserts ({BATCH} new entities each, {written:.1f} s of writing) on the "
            f"same core; {after:,.0f}/s once the writes were done",
        )
        if delivered < changes:
            row.error = f"{delivered} of {changes} notifications arrived within 300 s"
        bench.rows.append(row)
        print(f"  {delivered:,} notifications in {took:.1f} s: {delivered / took:,.0f}/s", flush=True)
        _ = http("DELETE", f"{broker.url}{BASE}/entities?type=Notified", headers={"Link": broker.link})


def idle_subscriptions_row(bench: Bench, python: Path, work: Path, n: int, patch_alone: Row) -> None:
    """PATCH on a fresh broker with 100 subscriptions that never match (issue 4: the write path slowed by under
    20%), compared with the PATCH row measured on the same kind of store without them."""

    def subscribe(broker: Broker) -> None:
        for i in range(100):
            idle = {
                "type": "Subscription",
                "entities": [{"type": "Vehicle"}],
                "q": f"speed=={1000 + i}",
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/never"}},
            }
            status, text, _ = http("POST", f"{broker.url}{BASE}/subscriptions", idle, {"Link": broker.link})
            if status != 201:
                raise RuntimeError(f"POST /subscriptions answered {status}: {text[:300]!r}")

    res = patch_on_fresh_broker(bench, python, work / "idle-subscriptions.db", n, prepare=subscribe)
    note = "100 subscriptions on Vehicle whose q never matches"
    with_subs, without = per_cpu_second(res.rate, res.server_cpu), per_cpu_second(patch_alone.rate, patch_alone.cpu)
    if with_subs and without:
        note += f"; {1 - with_subs / without:.0%} slower per CPU-second than without them"
    bench.record("PATCH one attribute, 100 idle subscriptions", n, res, note=note)


def patch_on_fresh_broker(
    bench: Bench,
    python: Path,
    db: Path,
    n: int,
    env: dict[str, str] | None = None,
    prepare: Callable[[Broker], None] | None = None,
) -> WrkResult:
    """The PATCH scenario on a broker of its own with `n` Vehicles, sent with the benchmark's user @context as
    the main PATCH row is, so that the two compare."""
    broker = Broker(python, db)
    with server(broker.cmd, broker.ready, env=env) as (proc, _):
        bench.server_pid = proc.pid
        broker.use_user_context()
        broker.load_to(n)
        if prepare is not None:
            prepare(broker)
        return patch_run(bench, broker, n)


def patch_run(bench: Bench, broker: Broker, n: int) -> WrkResult:
    common: dict[str, object] = {"base": BASE, "link": broker.link, "n": n, **_auth(broker)}
    return bench.wrk(broker.url, "patch", {**common, "id_prefix": "urn:ngsi-ld:Vehicle:", "attr": "fuel"})


def _auth(broker: Broker) -> dict[str, str]:
    """The wrk parameter of a secured broker's credential (the lua scripts send it as Authorization)."""
    return {"auth": broker.auth["Authorization"]} if broker.auth else {}


def secured_rows(bench: Bench, python: Path, work: Path, n: int, get_row: Row, patch_row: Row) -> None:
    """GET and PATCH again on a broker that requires a bearer JWT of a local issuer (issue 18: within 10% of the
    same without security; the token is verified once, then served from the broker's cache), rate limit off:
    first with the admin role (no policy read), then as an operator under a 50-rule policy (records 0220, 0221)."""
    with running_issuer(work) as issuer:
        broker = Broker(python, work / "secured.db")
        policy = work / "policy.json"
        policy.write_text(json.dumps({"@context": USER_CONTEXT["@context"], "rules": fifty_rules()}))
        broker.cmd += ["--issuers", str(issuer.issuers_file), "--policies", str(policy)]
        broker.ready = f"{broker.url}{BASE}/openapi.json"  # public: the rest answers 401 without the token
        broker.auth = {"Authorization": f"Bearer {issuer.token}"}
        with server(broker.cmd, broker.ready, env={"AGORA_RATE_LIMIT": "0"}) as (proc, _):
            bench.server_pid = proc.pid
            broker.use_user_context()
            broker.load_to(n)
            admin = token_rows(bench, broker, n, "bearer JWT", (get_row, patch_row))
            broker.auth = {"Authorization": f"Bearer {issuer.operator_token}"}
            token_rows(bench, broker, n, "bearer JWT, 50-rule policy", admin, against="the admin token")


def token_rows(
    bench: Bench, broker: Broker, n: int, label: str, plain: tuple[Row, Row], against: str = "no security"
) -> tuple[Row, Row]:
    """GET and PATCH with the broker's credential; each row's note compares it with `plain` per CPU-second."""
    one = f"{BASE}/entities/{vehicle_id(1)}"
    status, _, _ = http("GET", broker.url + one, headers={"Link": broker.link, **broker.auth})
    params: dict[str, object] = {"path": one, "link": broker.link, **_auth(broker)}
    bench.wrk(broker.url, "get", params, duration=2)  # warm-up, not recorded
    rows = []
    for name, res, before in (
        (f"GET entity, user @context, {label}", bench.wrk(broker.url, "get", params), plain[0]),
        (f"PATCH one attribute, {label}", patch_run(bench, broker, n), plain[1]),
    ):
        now, then = per_cpu_second(res.rate, res.server_cpu), per_cpu_second(before.rate, before.cpu)
        note = f"costs {1 - now / then:.0%} of the throughput per CPU-second against {against}" if now and then else ""
        row = bench.record(name, n, res, note=note)
        if status != 200 and not row.error:
            row.error = f"GET with the token answered {status}"
        rows.append(row)
    return rows[0], rows[1]


def fifty_rules() -> list[dict[str, object]]:
    """50 rules as a city might have them: 5 name the benchmark's operator (reads and writes of Vehicles, a
    denied attribute, an id pattern, history), 45 name other roles, types and attributes."""
    role = OPERATOR_ROLE
    mine: list[dict[str, object]] = [
        {"id": "op-read", "roles": [role], "actions": ["read"], "types": ["Vehicle"]},
        {"id": "op-write", "roles": [role], "actions": ["write"], "types": ["Vehicle"], "attrs": ["fuel", "speed"]},
        {"id": "op-no-secret", "effect": "deny", "roles": [role], "actions": ["read"], "attrs": ["secret"]},
        {"id": "op-ids", "roles": [role], "actions": ["read"], "idPatterns": ["urn:ngsi-ld:Vehicle:.*"]},
        {"id": "op-history", "roles": [role], "actions": ["temporal"], "types": ["Vehicle"]},
    ]
    others: list[dict[str, object]] = [
        {
            "id": f"other-{i}",
            "effect": "deny" if i % 7 == 0 else "allow",
            "roles": [f"role-{i}"],
            "actions": ["read", "write"] if i % 2 else ["read"],
            "types": [f"Type{i % 9}"],
            "attrs": [f"attr{i}", f"attr{i + 1}"] if i % 3 else [],
            "idPatterns": [f"urn:ngsi-ld:Type{i % 9}:{i}.*"] if i % 4 == 0 else [],
        }
        for i in range(45)
    ]
    return mine + others


def per_cpu_second(rate: float | None, cpu: float | None) -> float | None:
    """Requests per CPU-second of the server (steadier than req/s when the core is shared)."""
    return rate / cpu if rate and cpu else None


def import_row(bench: Bench, python: Path, broker: Broker, work: Path, stops: int) -> None:
    """`agora import gtfs` of a synthetic feed into the broker (issue 9: adapter import rate), the importer on the
    load generator's core: entities per second, end to end (read, translate, batch upsert, acknowledged)."""
    feed = work / "feed.zip"
    rows = write_feed(feed, stops)
    cmd = [
        "taskset",
        "-c",
        LOAD_CORE,
        str(python.parent / "agora"),
        "import",
        "gtfs",
        str(feed),
        "--broker",
        broker.url,
    ]
    cpu0, began = cpu_seconds(bench.server_pid), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    took = time.perf_counter() - began
    sent = re.search(r"entities sent: (\d+)", done.stderr)
    count = int(sent.group(1)) if sent else 0
    row = Row(
        "adapter import: agora import gtfs (synthetic feed)",
        count,
        rate=count / took if took else 0.0,
        unit="entities/s",
        note=f"{rows:,} source rows, {stops:,} stops; {took:.1f} s end to end",
    )
    row.cpu = (cpu_seconds(bench.server_pid) - cpu0) / took if took else None
    if done.returncode != 0 or not count:
        row.error = f"agora import exited with {done.returncode}: {done.stderr[-300:]!r}"
    bench.rows.append(row)
    print(f"  imported {count:,} entities in {took:.1f} s: {row.rate or 0:,.0f}/s", flush=True)


def ingest_row(bench: Bench, python: Path, broker: Broker, work: Path, payloads: int) -> None:
    """`agora ingest mqtt` (issue 22, target >= 5,000/s): a mosquitto on a free port, the ingester and the QoS 1
    publisher on the load generator's core, payloads of the four formats over 1,000 devices each; MQTT payloads per
    second from the first publish until the ingester, started with --count, has written and acknowledged them all."""
    from bench.ingest_load import mapping, publish

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    row = Row("MQTT ingestion: agora ingest mqtt (4 formats)", payloads, unit="payloads/s")
    bench.rows.append(row)
    if not Path(mosquitto).exists():
        row.error = "mosquitto is not installed (apt-get install mosquitto)"
        return
    port, devices = free_port(), 1000
    (work / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                         "max_queued_messages 0\nmax_inflight_messages 10000\n")  # fmt: skip
    (work / "ingest.yaml").write_text(mapping(devices))
    log = work / "ingest.log"
    mqtt_broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
    cmd = ["taskset", "-c", LOAD_CORE, str(python.parent / "agora"), "ingest", "mqtt", str(work / "ingest.yaml"),
           "--mqtt", f"mqtt://127.0.0.1:{port}", "--broker", broker.url, "--count", str(payloads),
           "--client-id", "bench-ingest"]  # fmt: skip
    with open(log, "wb") as out:
        ingester = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "connected to" not in log.read_text() and ingester.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu0, began = cpu_seconds(bench.server_pid), time.perf_counter()
        acknowledged = publish(port, payloads, devices)
        code = ingester.wait(timeout=600)
        took = time.perf_counter() - began
    finally:
        for proc in (ingester, mqtt_broker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    written = re.search(r"attribute instances written\s+(\d+)", log.read_text())
    row.rate = payloads / took if took else 0.0
    row.cpu = (cpu_seconds(bench.server_pid) - cpu0) / took if took else None
    per_cpu = f", {row.rate / row.cpu:,.0f} per server CPU-second" if row.cpu else ""
    row.note = f"{devices * 4:,} entities; {took:.1f} s end to end{per_cpu}; each value a temporal instance"
    if code != 0 or len(acknowledged) != payloads or not written or int(written.group(1)) != payloads:
        row.error = f"agora ingest exited with {code}, {len(acknowledged)} acknowledged: {log.read_text()[-300:]!r}"
    print(f"  ingested {payloads:,} MQTT payloads in {took:.1f} s: {row.rate:,.0f}/s", flush=True)


def startup_rows(bench: Bench, python: Path, work: Path, n: int) -> None:
    """Start-up and memory with `n` stored entities (issue 9: 1,000,000), the store filled through the Store API
    (bench/bulk_load.py) rather than HTTP, which would take an hour."""
    db = work / "startup.db"
    print(f"bulk-loading {n:,} entities", flush=True)
    done = subprocess.run(
        ["taskset", "-c", SERVER_CORE, str(python), str(HERE / "bulk_load.py"), str(db), str(n)],
        capture_output=True,
        text=True,
        timeout=7200,
    )
    if done.returncode != 0:
        bench.rows.append(Row("start-up: bulk load", n, error=f"bulk_load.py failed: {done.stderr[-300:]!r}"))
        return
    took = float(done.stdout.strip() or 0)
    bench.startup_loaded = n
    size = sum(f.stat().st_size for f in work.glob("startup.db*")) / 1e9
    bench.rows.append(
        Row(
            "bulk load through the Store API (no HTTP)",
            n,
            rate=n / took if took else 0,
            unit="entities/s",
            note=f"{size:.1f} GB of SQLite files",
        )
    )
    broker = Broker(python, db)
    with server(broker.cmd, broker.ready) as (proc, started):
        bench.server_pid = proc.pid
        bench.rows.append(Row("start-up: spawn to first 200 (sourceIdentity)", n, result=f"{started:.2f} s"))
        path = f"{BASE}/entities/urn:ngsi-ld:Vehicle:{n // 2}"
        status, _, _ = http("GET", broker.url + path)
        res = bench.wrk(broker.url, "get", {"path": path, "link": ""}, connections=1, duration=bench.duration)
        row = bench.record("GET entity (core @context), 1 connection", n, res)
        if status != 200 and not row.error:
            row.error = f"GET answered {status}"
        memory_row(bench, proc.pid, n, "after start-up and GETs")
        print(f"  start-up with {n:,} entities: {started:.2f} s", flush=True)


def opendata_row(bench: Bench, python: Path, work: Path, n: int) -> None:
    """The open data dump of `n` Vehicle entities (issue 19): survey plus the four distributions written from one
    pass, as the regeneration job does (bench/opendata_dump.py), with the peak RSS of the process that did it. The
    store is the start-up rows' bulk-loaded one when it holds `n` entities, else one bulk-loaded here."""
    db = work / "startup.db"
    if not (db.exists() and n == bench.startup_loaded):
        db = work / "opendata.db"
        loaded = subprocess.run(
            [str(python), str(HERE / "bulk_load.py"), str(db), str(n)], capture_output=True, text=True, timeout=7200
        )
        if loaded.returncode != 0:
            bench.rows.append(Row("open data dump", n, error=f"bulk_load.py failed: {loaded.stderr[-300:]!r}"))
            return
    print(f"open data dump of {n:,} entities", flush=True)
    done = subprocess.run(
        ["taskset", "-c", SERVER_CORE, str(python), str(HERE / "opendata_dump.py"), str(db), str(work / "opendata")],
        capture_output=True,
        text=True,
        timeout=7200,
    )
    label = f"open data dump of {n:,} entities: time and peak RSS"
    if done.returncode != 0:
        bench.rows.append(Row(label, n, error=f"opendata_dump.py failed: {done.stderr[-300:]!r}"))
        return
    out = json.loads(done.stdout)
    sizes = ", ".join(f"{fmt} {size / 1e6:,.0f} MB" for fmt, size in out["bytes"].items())
    bench.rows.append(
        Row(
            label,
            n,
            result=f"{out['seconds']:.1f} s ({out['entities'] / max(out['seconds'], 1e-9):,.0f} entities/s), peak RSS "
            f"{out['peak_mb']:,.0f} MB ({out['before_mb']:,.0f} MB before the dump)",
            note=f"survey, then GeoJSON, CSV, NGSI-LD and Turtle from one pass: {sizes}",
        )
    )


def history_off(bench: Bench, python: Path, work: Path, n: int, with_history: Row) -> None:
    """PATCH again on a broker that records no history: what recording costs (issue 5: under 20%)."""
    res = patch_on_fresh_broker(bench, python, work / "no-history.db", n, env={"AGORA_HISTORY": "false"})
    note = "AGORA_HISTORY=false"
    recording, not_recording = (
        per_cpu_second(with_history.rate, with_history.cpu),
        per_cpu_second(res.rate, res.server_cpu),
    )
    if recording and not_recording:
        note += f"; recording history costs {1 - recording / not_recording:.0%} of PATCH throughput per CPU-second"
    bench.record("PATCH one attribute, history off", n, res, note=note)


def federation_rows(bench: Bench, python: Path, work: Path, n: int) -> None:
    """Issue 16's rows (bench/federation.py): a query over two registered brokers, one idle registration."""
    from bench.federation import federated_query_row, idle_registration_rows  # it imports this module

    federated_query_row(bench, python, work, n)
    idle_registration_rows(bench, python, work, n)


def run(args: argparse.Namespace) -> int:
    python = Path(sys.executable)
    sizes = [1000, 10000] + ([100000] if not args.quick and args.max_entities >= 100000 else [])
    sizes = [s for s in sizes if s <= args.max_entities] or [1000]
    skipped = (
        []
        if 100000 in sizes
        else [
            "100,000 entities (query, geo, memory) skipped: "
            + ("--quick" if args.quick else f"--max-entities {args.max_entities}")
        ]
    )
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="agora-bench-") as tmp:
        work = Path(tmp)
        bench = Bench(args.duration or (2 if args.quick else 10), args.connections, work)
        if args.profile:
            bench.profile_dir = Path(args.profile).resolve()
            bench.profile_dir.mkdir(parents=True, exist_ok=True)
            (bench.profile_dir / "summary.md").write_text("# py-spy profiles of the broker during each wrk run\n\n")
        broker = Broker(python, work / "bench.db")
        with server(broker.cmd, broker.ready) as (proc, _):
            bench.server_pid = proc.pid
            broker.use_user_context()
            print(f"loading {sizes[0]:,} entities", flush=True)
            broker.load_to(sizes[0])
            memory_row(bench, proc.pid, sizes[0], "after load")
            one = f"{BASE}/entities/{vehicle_id(1)}"
            status, body, headers = http("GET", broker.url + one, headers={"Link": broker.link})
            if status != 200:
                raise RuntimeError(f"GET {one} answered {status}")
            keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "link")}
            saved = work / "ceiling.json"
            saved.write_text(json.dumps({"body": body.decode(), "headers": keep}))

            cport = free_port()
            with server(
                [str(python), str(HERE / "ceiling.py"), str(cport), str(saved)], f"http://127.0.0.1:{cport}{one}"
            ) as (ceiling, _):
                bench.server_pid = ceiling.pid
                res = bench.wrk(f"http://127.0.0.1:{cport}", "get", {"path": one, "link": ""})
                bench.record("ceiling: bare Starlette, same bytes", None, res, note=f"{len(body)} B body")
                bench.ceiling = res.rate if not res.error else None
                bench.ceiling_per_cpu = res.rate / res.server_cpu if bench.ceiling and res.server_cpu else None
            bench.server_pid = proc.pid

            gets = [
                ("GET entity, normalized, user @context", one),
                ("GET entity, keyValues", one + "?options=keyValues"),
                ("GET entity, pick=speed,fuel,location", one + "?pick=speed,fuel,location"),
            ]
            bench.wrk(broker.url, "get", {"path": one, "link": broker.link}, duration=2)  # warm-up, not recorded
            recorded = [
                bench.record(name, sizes[0], bench.wrk(broker.url, "get", {"path": path, "link": broker.link}))
                for name, path in gets
            ]
            common = {"base": BASE, "link": broker.link, "n": sizes[0]}
            patch_row = bench.record(
                "PATCH one attribute", sizes[0], patch_run(bench, broker, sizes[0]), note="history recorded"
            )
            queries_and_memory(bench, broker, proc.pid, sizes[0], args.quick)

            pre, post = split_template("Car")
            res = bench.wrk(
                broker.url, "create", {**common, "id_prefix": "urn:ngsi-ld:Car:c", "pre": pre, "post": post}
            )
            bench.record("POST create entity", sizes[0], res)
            res = bench.wrk(
                broker.url,
                "batch",
                {**common, "id_prefix": "urn:ngsi-ld:Car:b", "pre": pre, "post": post, "batch": BATCH},
                connections=WRITE_CONNS,
            )
            bench.record(
                "batch upsert, 1,000 new entities/request",
                sizes[0],
                res,
                unit="entities/s",
                per_req=BATCH,
                note=f"{WRITE_CONNS} connections",
            )
            status, body, _ = http("DELETE", f"{broker.url}{BASE}/entities?type=Car", headers={"Link": broker.link})
            if status != 204:
                raise RuntimeError(f"purging the Car entities answered {status}: {body[:300]!r}")

            for n in sizes[1:]:
                print(f"loading up to {n:,} entities", flush=True)
                rate = broker.load_to(n)
                print(f"  loaded at {rate:,.0f} entities/s", flush=True)
                memory_row(bench, proc.pid, n, "after load")
                queries_and_memory(bench, broker, proc.pid, n, args.quick)
            temporal_rows(bench, broker, 10_000 if args.quick else 100_000)
            notification_rows(bench, python, broker, 5_000 if args.quick else 20_000)
            import_row(bench, python, broker, work, 500 if args.quick else 5_000)
            ingest_row(bench, python, broker, work, 5_000 if args.quick else 50_000)
        with server(broker.cmd, broker.ready) as (_, took):
            bench.rows.append(
                Row(
                    "start-up: spawn to first 200 (sourceIdentity)",
                    broker.loaded,
                    result=f"{took:.2f} s",
                    note="loaded store",
                )
            )
            print(f"  start-up {took:.2f} s", flush=True)
        history_off(bench, python, work, sizes[0], patch_row)
        idle_subscriptions_row(bench, python, work, sizes[0], patch_row)
        federation_rows(bench, python, work, 1_000 if args.quick else 10_000)
        secured_rows(bench, python, work, sizes[0], recorded[0], patch_row)
        if args.startup_entities:
            startup_rows(bench, python, work, args.startup_entities)
        opendata_row(bench, python, work, args.startup_entities or (5_000 if args.quick else 100_000))

    text = "\n".join(
        [
            "# Agora benchmark" + (" (quick)" if args.quick else ""),
            "",
            machine_header(str(python)),
            f"- each wrk run: {bench.duration} s, {bench.connections} connections (batch upsert: {WRITE_CONNS}, "
            "queries: 1), 1 thread; ratio = req/s over the ceiling's req/s",
            f"- load average (1 min) {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (2 cores: "
            "above 2, other processes competed with the run); server CPU = CPU seconds of the server per second; "
            "ratio per CPU-second = (req/s / server CPU) over the same for the ceiling, steadier when the core "
            "is shared",
            *(f"- {s}" for s in skipped),
            *(["- profiled with py-spy during every run: the numbers are perturbed"] if args.profile else []),
            "",
            format_table(bench.rows),
            "",
        ]
    )
    print("\n" + text)
    if args.out:
        write_report(Path(args.out), text)
    failed = [r for r in bench.rows if r.error]
    if failed:
        print(
            f"{len(failed)} scenario(s) failed: " + ", ".join(f"{r.operation} ({r.size})" for r in failed),
            file=sys.stderr,
        )
        return 1
    return 0


def write_report(path: Path, text: str) -> None:
    """Writes the report, keeping the hand-written analysis that follows ANALYSIS in an existing file."""
    old = path.read_text() if path.exists() else ""
    kept = old[old.index(ANALYSIS) :] if ANALYSIS in old else ""
    path.write_text(text + ("\n" + kept if kept else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per scenario, 1,000 and 10,000 entities only")
    parser.add_argument("--out", help="also write the Markdown report to this file")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, or 2 with --quick)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--profile", metavar="DIR", help="sample the broker with py-spy during every run (numbers are then perturbed)"
    )
    parser.add_argument("--max-entities", type=int, default=100000, help="largest data size (default 100000)")
    parser.add_argument(
        "--startup-entities",
        type=int,
        default=0,
        help="also measure start-up and memory with this many stored entities, bulk-loaded (make bench: 1000000)",
    )
    args = parser.parse_args(argv)
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"missing: {', '.join(missing)} (Debian: apt-get install -y wrk util-linux)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs 2 cores: wrk on core 0, the broker on core 1", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
