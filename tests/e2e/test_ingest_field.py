"""`agora ingest opcua` and `agora ingest modbus` end to end (issue 22, record 0380): asyncua's own Server and
pymodbus's own async TCP server on free loopback ports, the real broker, one mapping model for both."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import httpx
from asyncua import Server, ua
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from adapters.live.mapping import parse_mapping
from adapters.live.modbus import modbus_source
from adapters.live.opcua import opcua_source
from adapters.live.run import BrokerOptions, ingest
from adapters.live.writer import Stats
from tests.e2e.helpers import history, project_link, uid
from tests.support.servers import BrokerProcess, free_port

API = "/ngsi-ld/v1"


def _entity(url: str, entity_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}{API}/entities/{entity_id}", headers=project_link(url), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_opcua_data_changes_become_temporal_instances(broker_server: BrokerProcess) -> None:
    pump = uid("pump").rsplit(":", 1)[-1]
    mapping = parse_mapping({"rules": [{
        "opcua": [{"node": "ns=2;s=Pump1.Pressure", "device": pump, "key": "pressure"},
                  {"node": "ns=2;s=Pump1.Running", "device": pump, "key": "running"}],
        "type": "Pump", "id": "urn:ngsi-ld:Pump:test:{device}",
        "attributes": {"pressure": {"name": "pressure", "unit": "BAR"}, "running": {"name": "running"}},
    }]})  # fmt: skip
    port = free_port()

    async def scenario() -> Stats:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/agora/")
        index = await server.register_namespace("urn:agora:test")
        assert index == 2
        plant = await server.nodes.objects.add_object(index, "Pump1")
        pressure = await plant.add_variable(ua.NodeId("Pump1.Pressure", index), "Pressure", 1.5)
        await plant.add_variable(ua.NodeId("Pump1.Running", index), "Running", True)
        stats = Stats()
        async with server:
            source = opcua_source(f"opc.tcp://127.0.0.1:{port}/agora/", mapping, 20)
            task = asyncio.create_task(ingest(mapping, BrokerOptions(broker_server.url), source, count=5,
                                              stats=stats))  # fmt: skip
            await _wait(lambda: stats.handled >= 2)  # the initial values of both nodes
            for value in (2.0, 2.5, 3.0):
                handled = stats.handled
                await pressure.write_value(value)
                await _wait(lambda handled=handled: stats.handled > handled)
            await asyncio.wait_for(task, 10)
        return stats

    stats = asyncio.run(scenario())
    assert stats.handled == 5 and not stats.malformed and not stats.refused
    entity_id = f"urn:ngsi-ld:Pump:test:{pump}"
    assert history(broker_server.url, entity_id, "pressure") == [150.0, 200.0, 250.0, 300.0]  # bar -> kPa
    current = _entity(broker_server.url, entity_id)
    assert current["pressure"]["unitCode"] == "KPA" and current["running"]["value"] is True


def test_modbus_registers_are_polled_scaled_and_converted(broker_server: BrokerProcess) -> None:
    meter = uid("meter").rsplit(":", 1)[-1]
    mapping = parse_mapping({"rules": [{
        "modbus": [{"device": meter, "key": "power", "table": "holding", "address": 0, "datatype": "float32"},
                   {"device": meter, "key": "temp", "table": "input", "address": 4, "datatype": "int16"},
                   {"device": meter, "key": "breaker", "table": "coil", "address": 1}],
        "type": "EnergyMeter", "id": "urn:ngsi-ld:EnergyMeter:test:{device}",
        "attributes": {"power": {"name": "activePower", "unit": "KWT"},
                       "temp": {"name": "temperature", "unit": "CEL", "scale": 0.1},
                       "breaker": {"name": "breakerClosed"}},
    }]})  # fmt: skip
    port = free_port()
    holding = list(struct.unpack(">HH", struct.pack(">f", 230.5))) + [0] * 8
    # a data block starting at 1 holds protocol address 0 (pymodbus counts its blocks from 1)
    context = ModbusServerContext(devices=ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, holding), ir=ModbusSequentialDataBlock(1, [0, 0, 0, 0, 0x10000 - 125, 0]),
        co=ModbusSequentialDataBlock(1, [False, True, False]), di=ModbusSequentialDataBlock(1, [False] * 4),
    ), single=True)  # fmt: skip

    async def scenario() -> Stats:
        server = ModbusTcpServer(context, address=("127.0.0.1", port))
        serving = asyncio.create_task(server.serve_forever())
        stats = Stats()
        try:
            source = modbus_source(f"127.0.0.1:{port}", mapping, 0.05)
            await asyncio.wait_for(ingest(mapping, BrokerOptions(broker_server.url), source, count=3,
                                          stats=stats), 20)  # fmt: skip
        finally:
            await server.shutdown()
            serving.cancel()
        return stats

    stats = asyncio.run(scenario())
    assert stats.handled == 3 and not stats.malformed, stats
    entity = _entity(broker_server.url, f"urn:ngsi-ld:EnergyMeter:test:{meter}")
    assert entity["activePower"]["value"] == 230.5 and entity["activePower"]["unitCode"] == "KWT"
    assert entity["temperature"]["value"] == -12.5 and entity["temperature"]["unitCode"] == "CEL"
    assert entity["breakerClosed"]["value"] is True
    assert history(broker_server.url, f"urn:ngsi-ld:EnergyMeter:test:{meter}", "activePower") == [230.5] * 3
