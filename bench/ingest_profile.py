"""Where the CPU of MQTT ingestion goes (issue 22): the bench row's pipeline (mosquitto, `agora ingest mqtt`, `agora
serve` on SQLite, a QoS 1 publisher of the four formats over 1,000 devices each), with py-spy sampling the broker and
the ingester; prints the functions with the most samples of their own and the share of a few code paths.

    pip install py-spy   # not a dependency of the project
    python bench/ingest_profile.py [--payloads 20000] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402

from bench.ingest_load import mapping, publish  # noqa: E402

# code paths whose share of the samples is printed: a frame of the stack containing the text
PATHS = {
    "broker: JSON-LD expansion of the request": "broker/ld/",
    "broker: store writes (sqlite)": "broker/store/sqlite",
    "broker: temporal history rows": "broker/temporal/",
    "broker: change feed / notifier": "broker/notify/",
    "broker: HTTP layer (starlette, uvicorn)": "starlette/",
    "ingester: paho network loop": "paho/mqtt/",
    "ingester: payload decoding and mapping": "adapters/live/payloads.py",
    "ingester: mapping rules": "adapters/live/mapping.py",
    "ingester: writer (rounds, JSON, httpx)": "adapters/live/writer.py",
    "ingester: httpx/httpcore": "httpcore/",
    "ingester: one message translated (Translator.item)": "Translator.item ",
    "ingester: topic routing (IngestMapping.route)": "IngestMapping.route ",
    "ingester: readings to updates (Rule.updates)": "Rule.updates ",
    "ingester: rounds of a batch (writer.rounds)": "rounds (adapters/live/writer.py",
    "ingester: start-up imports": "importlib._bootstrap",
}


# leaf frames that are a thread waiting, not working (py-spy counts a thread blocked in these as active): left out
WAITS = ("Condition.wait (threading.py", "EpollSelector.select (selectors.py",
         "_worker (concurrent/futures/thread.py:81)", "Client._loop (paho/mqtt/client.py:1667)",
         "Runner.run (asyncio/runners.py:118)")  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ngsi-ld/v1/info/sourceIdentity", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the broker did not start")


def summarise(raw: Path, top: int) -> tuple[int, int, list[tuple[str, int]], dict[str, int]]:
    """Working samples, waiting ones, the frames with the most working samples of their own, and the working
    samples of each of PATHS."""
    own: collections.Counter[str] = collections.Counter()
    paths: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(WAITS):
            waiting += n
            continue
        total += n
        own[frames[-1]] += n
        for label, text in PATHS.items():
            if any(text in frame for frame in frames):
                paths[label] += n
    return total, waiting, own.most_common(top), dict(paths)


def report(name: str, raw: Path, top: int) -> None:
    total, waiting, frames, paths = summarise(raw, top)
    print(f"\n## {name}: {total} working samples (and {waiting} of threads waiting, left out); shares of the working")
    for label, n in sorted(paths.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * n / max(total, 1):5.1f}%  {label}")
    print("  own samples:")
    for frame, n in frames:
        print(f"  {100 * n / max(total, 1):5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    agora = str(Path(sys.executable).parent / "agora")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port, mqtt_port = free_port(), free_port()
        url = f"http://127.0.0.1:{port}"
        (work / "mosquitto.conf").write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                                             "persistence false\nmax_queued_messages 0\n")  # fmt: skip
        (work / "ingest.yaml").write_text(mapping(1000))
        procs = [subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(work / "mosquitto.conf")],
                                  stderr=subprocess.DEVNULL)]  # fmt: skip
        try:
            broker = subprocess.Popen([agora, "serve", "--port", str(port), "--store", f"sqlite:///{work / 'a.db'}",
                                       "--log-level", "warning"])  # fmt: skip
            procs.append(broker)
            wait_up(url)
            log = open(work / "ingest.log", "wb")  # noqa: SIM115 (closed with the process)
            ingester = subprocess.Popen([spy, "record", "--format", "raw", "-r", "250", "-o", str(work / "ing.txt"),
                                         "--", agora, "ingest", "mqtt", str(work / "ingest.yaml"), "--mqtt",
                                         f"mqtt://127.0.0.1:{mqtt_port}", "--broker", url, "--count",
                                         str(args.payloads), "--stats-every", "0"], stdout=log, stderr=log)  # fmt: skip
            procs.append(ingester)
            deadline = time.monotonic() + 60
            while "connected to" not in (work / "ingest.log").read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            sampler = subprocess.Popen([spy, "record", "--format", "raw", "-r", "250", "-o", str(work / "brk.txt"),
                                        "--pid", str(broker.pid)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)  # fmt: skip
            procs.append(sampler)
            began = time.perf_counter()
            acknowledged = publish(mqtt_port, args.payloads, 1000)
            ingester.wait(timeout=900)
            took = time.perf_counter() - began
            sampler.send_signal(2)  # SIGINT: py-spy writes what it sampled
            sampler.wait(timeout=60)
            print(f"{len(acknowledged):,} payloads in {took:.1f} s: {args.payloads / took:,.0f}/s end to end "
                  f"(sampled, so slower than unsampled)")  # fmt: skip
            report("agora serve", work / "brk.txt", args.top)
            report("agora ingest mqtt", work / "ing.txt", args.top)
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
