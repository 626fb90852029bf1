"""MQTT ingestion throughput (issue 22, target >= 5,000 payloads/s): the row `make bench` records (bench/run.py
ingest_row) without the rest of the run, on a fresh broker, and the ingester's own cost per payload measured in
process against a broker that answers at once (so steadier on a shared machine).

    python bench/ingest_cost.py [--payloads 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
import yaml  # noqa: E402

from adapters.live.mapping import parse_mapping  # noqa: E402
from adapters.live.mqtt import MqttOptions, mqtt_source  # noqa: E402
from adapters.live.writer import Item, Stats, Writer  # noqa: E402
from bench.ingest_load import mapping  # noqa: E402
from bench.run import Bench, Broker, format_table, free_port, ingest_row, server  # noqa: E402


async def _ingester_alone(port: int, payloads: int) -> tuple[float, float]:
    """(payloads per wall second, per CPU second of this process) of the ingester over mosquitto, its writes
    answered 204 at once in process; the publisher is another process."""
    rules = parse_mapping(yaml.safe_load(mapping(1000)))
    stats = Stats()
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    async with httpx.AsyncClient(transport=transport, base_url="http://broker") as client:
        writer = Writer(client, {}, stats, parallel=4)
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        stop = await mqtt_source(MqttOptions(f"mqtt://127.0.0.1:{port}", "bench-alone"), rules)(queue, stats)
        await asyncio.sleep(1.0)  # subscribed
        code = f"import sys; sys.path.insert(0, {str(HERE.parent)!r}); from bench.ingest_load import publish; " \
               f"publish({port}, {payloads}, 1000)"  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        publisher = subprocess.Popen([sys.executable, "-c", code])
        await writer.run(queue, payloads)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        publisher.wait(60)
        await stop()
    return payloads / wall, payloads / cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=50_000)
    args = parser.parse_args()
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Broker(python, work / "agora.db")
        bench = Bench(10, 32, work)
        with server(broker.cmd, broker.ready) as (proc, _):
            bench.server_pid = proc.pid
            ingest_row(bench, python, broker, work, args.payloads)
        print(format_table(bench.rows))
        port = free_port()
        (work / "alone.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                         "max_queued_messages 0\n")  # fmt: skip
        mosquitto = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(work / "alone.conf")],
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(0.3)
            wall, cpu = asyncio.run(_ingester_alone(port, args.payloads))
        finally:
            mosquitto.terminate()
            mosquitto.wait(10)
        print(f"the ingester alone: {wall:,.0f} payloads/s wall, {cpu:,.0f} payloads per CPU-second")
    return 1 if any(r.error for r in bench.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
