"""`agora ingest opcua` and `agora ingest modbus` through outages (issue 22, record 0384): the field server (asyncua's
own Server, pymodbus's own TCP server) stopped and started again on the same port, then the NGSI-LD broker killed
with SIGKILL and started again on its store. The ingester reconnects to each, and every value it read ends as one
temporal instance: none lost while the broker was away, none written twice."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from asyncua import Server, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from tests.e2e.helpers import project_link
from tests.support.servers import BrokerProcess, free_port, start_broker

ROOT = Path(__file__).resolve().parents[2]
API = "/ngsi-ld/v1"
SUMMARY_RECEIVED = "messages received"


async def instances(url: str, entity_id: str, attribute: str) -> list[tuple[Any, str]]:
    """(value, observedAt) of each temporal instance, oldest first; [] while the broker is away or before the
    ingester hosted the project @context there."""
    params = {"attrs": attribute, "format": "temporalValues", "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
    try:
        headers = await asyncio.to_thread(project_link, url)
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{url}{API}/temporal/entities/{quote(entity_id, safe='')}", params=params,
                                        headers=headers)  # fmt: skip
    except (httpx.TransportError, AssertionError):
        return []
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return [(value, at) for value, at in response.json().get(attribute, {}).get("values", [])]


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def ingester(tmp_path: Path, kind: str, mapping: dict[str, Any], server: str, broker: str,
                   *flags: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:  # fmt: skip
    """`agora ingest KIND` as a user starts it; yields a coroutine that stops it with SIGTERM (it writes what it
    holds first) and returns its log, summary included."""
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    log_path = tmp_path / f"ingest-{kind}.log"
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "broker.cli", "ingest", kind, str(tmp_path / "mapping.yaml"), "--server", server,
            "--broker", broker, "--stats-every", "0.5", *flags, stdout=log, stderr=log, cwd=ROOT,
        )  # fmt: skip

    async def stop() -> str:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        text = log_path.read_text()
        assert code == 0, text
        return text

    try:
        yield stop
    finally:
        if process.returncode is None:  # the scenario failed: its log says how far the ingester got
            process.kill()
            await process.wait()
            print(f"--- {log_path.name}:\n{log_path.read_text()[-6000:]}")


def summary_count(log: str, label: str) -> int:
    (line,) = [line for line in log.splitlines() if line.strip().startswith(label)]
    return int(line.split()[-1])


async def restart_broker(broker: BrokerProcess, store: str, tmp_path: Path, port: int,
                         while_down: Callable[[], Awaitable[None]]) -> BrokerProcess:  # fmt: skip
    """SIGKILL, ``while_down``, then `agora serve` again on the same store and port (in a thread: the field server in
    this event loop keeps answering meanwhile)."""
    await asyncio.to_thread(broker.kill)
    await while_down()
    return await asyncio.to_thread(start_broker, store, tmp_path, port=port)


async def opcua_server(port: int, pressure: float) -> tuple[Server, Any]:
    """An asyncua Server with the node, not yet listening (init, the slow part, done ahead of the restart)."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/agora/")
    index = await server.register_namespace("urn:agora:test")
    plant = await server.nodes.objects.add_object(index, "Pump1")
    node = await plant.add_variable(ua.NodeId("Pump1.Pressure", index), "Pressure", pressure)
    return server, node


def test_opcua_ingestion_reconnects_and_loses_nothing_across_outages(tmp_path: Path) -> None:
    store, port = f"sqlite:///{tmp_path / 'agora.db'}", free_port()
    entity = "urn:ngsi-ld:Pump:outage:p1"
    mapping = {"rules": [{"opcua": [{"node": "ns=2;s=Pump1.Pressure", "device": "p1", "key": "pressure"}],
                          "type": "Pump", "id": "urn:ngsi-ld:Pump:outage:{device}"}]}  # fmt: skip
    field_port = free_port()
    brokers: list[BrokerProcess] = []  # each one started, stopped at the end whatever happens

    async def scenario() -> tuple[list[tuple[Any, str]], str]:
        endpoint, url = f"opc.tcp://127.0.0.1:{field_port}/agora/", f"http://127.0.0.1:{port}"

        async def arrived(*values: float) -> bool:
            return [v for v, _ in await instances(url, entity, "pressure")][-len(values):] == list(values)

        # the ingester first: it waits for the broker and the field server, both started meanwhile
        async with ingester(tmp_path, "opcua", mapping, endpoint, url, "--interval", "20") as stop:
            broker, (server, node) = await asyncio.gather(
                asyncio.to_thread(start_broker, store, tmp_path, port=port), opcua_server(field_port, 1.0))
            brokers.append(broker)
            await server.start()
            try:
                await until(lambda: arrived(1.0))  # the initial value, on subscribing
                await node.write_value(2.0)
                await until(lambda: arrived(1.0, 2.0))
                # the server to restart with, made while the first serves its subscriber (made earlier, its nodes'
                # changes after the restart were not published: asyncua 2.1)
                again, node_again = await opcua_server(field_port, 3.0)
                await server.stop()  # the field server goes away...
                await asyncio.sleep(0.5)
                server, node = again, node_again
                await server.start()  # ...and comes back on its port, with a new value
                await until(lambda: arrived(2.0, 3.0))  # subscribed again: the value it holds now
                await node.write_value(4.0)
                await until(lambda: arrived(3.0, 4.0))
                await node.write_value(5.0)  # read, and being written when the broker dies

                async def change() -> None:  # read while the broker is away
                    for value in (6.0, 7.0):
                        await node.write_value(value)
                        await asyncio.sleep(0.2)

                brokers.append(await restart_broker(broker, store, tmp_path, port, change))
                await until(lambda: arrived(5.0, 6.0, 7.0))
                log = await stop()
            finally:
                await server.stop()
        return await instances(url, entity, "pressure"), log

    try:
        recorded, log = asyncio.run(scenario())
        assert [v for v, _ in recorded] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], log
        assert len({at for _, at in recorded}) == len(recorded)  # each with its own source timestamp
        assert summary_count(log, SUMMARY_RECEIVED) == len(recorded), log  # every data change read is recorded
        assert "the OPC UA server at" in log and "connecting again" in log  # the field outage was felt
        assert "Traceback" not in log  # reported once, by the ingester, not by asyncua
        assert "the broker cannot take writes" in log  # and so was the broker's
        assert "received " in log and "pending " in log  # the periodic counts
    finally:
        for started in brokers:
            started.stop()


def modbus_context(power: int) -> ModbusServerContext:
    # a data block starting at 1 holds protocol address 0 (pymodbus counts its blocks from 1)
    return ModbusServerContext(devices=ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [power, 0])), single=True)


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def write_register(port: int, value: int) -> None:
    """Holding register 0 set as a SCADA would set it: a write request of another Modbus client (function 6)."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    assert await client.connect()
    try:
        assert not (await client.write_register(0, value, device_id=1)).isError()
    finally:
        client.close()


@asynccontextmanager
async def modbus_server(port: int, context: ModbusServerContext) -> AsyncIterator[None]:
    server = ModbusTcpServer(context, address=("127.0.0.1", port))
    serving = asyncio.create_task(server.serve_forever())
    await until(lambda: listening(port), 5)
    try:
        yield
    finally:
        await server.shutdown()
        serving.cancel()


def test_modbus_polling_reconnects_and_loses_no_reading_across_outages(tmp_path: Path) -> None:
    store, port = f"sqlite:///{tmp_path / 'agora.db'}", free_port()
    entity = "urn:ngsi-ld:EnergyMeter:outage:m1"
    mapping = {"rules": [{"modbus": [{"device": "m1", "key": "power", "address": 0}], "type": "EnergyMeter",
                          "id": "urn:ngsi-ld:EnergyMeter:outage:{device}"}]}  # fmt: skip
    field_port = free_port()
    brokers: list[BrokerProcess] = []  # each one started, stopped at the end whatever happens

    async def scenario() -> tuple[list[tuple[Any, str]], str]:
        url = f"http://127.0.0.1:{port}"

        async def seen(value: int) -> bool:
            return value in [v for v, _ in await instances(url, entity, "power")]

        # the ingester first: it waits for the broker (and polls a server that is not there yet)
        async with ingester(tmp_path, "modbus", mapping, f"127.0.0.1:{field_port}", url, "--interval",
                            "0.1") as stop:  # fmt: skip
            broker = await asyncio.to_thread(start_broker, store, tmp_path, port=port)
            brokers.append(broker)
            async with modbus_server(field_port, modbus_context(10)):
                await until(lambda: seen(10))
            await asyncio.sleep(0.5)  # polls fail meanwhile: nothing to read, nothing written
            context = modbus_context(20)
            async with modbus_server(field_port, context):
                await until(lambda: seen(20))  # polled again after the restart
                await asyncio.sleep(0.2)

                async def change() -> None:  # polled while the broker is away
                    await asyncio.sleep(0.2)
                    await write_register(field_port, 30)
                    await asyncio.sleep(0.5)

                brokers.append(await restart_broker(broker, store, tmp_path, port, change))
                await until(lambda: seen(30))
                log = await stop()
        return await instances(url, entity, "power"), log

    try:
        recorded, log = asyncio.run(scenario())
        values = [v for v, _ in recorded]
        assert values == sorted(values) and set(values) == {10, 20, 30}, values
        assert len({at for _, at in recorded}) == len(recorded)  # one instance per poll, none written twice
        assert summary_count(log, SUMMARY_RECEIVED) == len(recorded), log  # every poll's reading is recorded
        assert "malformed" not in log.split("ingested for", 1)[1], log  # an outage is not a bad reading
        assert "the Modbus server at" in log  # the field outage was felt
        assert "the broker cannot take writes" in log
    finally:
        for started in brokers:
            started.stop()


def test_a_modbus_connection_lost_mid_poll_is_an_outage_not_a_malformed_reading() -> None:
    """The server goes away while the client holds its connection: the next poll ends at its first read, says why,
    and counts nothing received and nothing malformed (record 0384)."""
    from adapters.live.mapping import parse_mapping
    from adapters.live.modbus import poll
    from adapters.live.writer import Stats

    (rule,) = parse_mapping({"rules": [{"modbus": [{"device": "m1", "key": "power", "address": 0},
                                                   {"device": "m1", "key": "energy", "address": 1}],
                                        "type": "EnergyMeter", "id": "urn:ngsi-ld:EnergyMeter:t:{device}"}]}).rules
    port = free_port()

    async def scenario() -> tuple[Any, Any, Any, Stats]:
        stats = Stats()
        client = AsyncModbusTcpClient("127.0.0.1", port=port, reconnect_delay=0, retries=0, timeout=1)
        async with modbus_server(port, modbus_context(10)):
            assert await client.connect()
            whole = await poll(client, rule, stats)
        started = time.monotonic()
        cut = await poll(client, rule, stats)  # the server is gone: no reading at all
        assert time.monotonic() - started < 1.5  # one timeout at most, no retries
        client.close()
        return whole, cut, client.connected, stats

    (item, lost), (nothing, why), connected, stats = asyncio.run(scenario())
    assert lost is None and [u.attrs["power"]["value"] for u in item.updates] == [10]
    assert nothing is None and why is not None and not connected
    assert not stats.malformed and stats.received == 1
