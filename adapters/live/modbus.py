"""`agora ingest modbus`: Modbus TCP registers polled with pymodbus into attribute updates (record 0380).

A point of a ``modbus`` rule names a register and how to read it::

    {device: meter-1, key: power, table: holding, address: 0, datatype: float32, word_order: big, unit_id: 1}

``table`` is holding (default), input, coil or discrete; ``datatype`` int16, uint16 (default), int32, uint32,
int64, uint64, float32 or float64, spread over as many 16-bit registers as it needs; the rule's attribute map
then scales it (``scale``, ``offset``) and gives its unit. Every poll stamps its readings with the poll's time.

A server that refuses a read (a Modbus exception response) makes a malformed reading; a connection that fails or
a server that does not answer is an outage: the poll ends with what it read, the connection is opened again at the
next poll, and no reading is counted malformed (record 0384).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from adapters.live.mapping import IngestMapping, MappingError, Reading, Rule
from adapters.live.payloads import iso_ms
from adapters.live.run import Outage, Source
from adapters.live.writer import Item, Stats

log = logging.getLogger("agora.ingest")
TABLES = ("holding", "input", "coil", "discrete")
DATATYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")
OUTAGE = (ConnectionException, ModbusIOException)  # no answer: not the reading's fault


def _check(point: dict[str, Any], rule: Rule) -> None:
    where = f"rule {rule.name}: modbus point {point.get('key')!r}"
    if point.get("table", "holding") not in TABLES:
        raise MappingError(f"{where}: table is one of {', '.join(TABLES)}")
    if point.get("datatype", "uint16") not in DATATYPES:
        raise MappingError(f"{where}: datatype is one of {', '.join(DATATYPES)}")
    if point.get("word_order", "big") not in ("big", "little"):
        raise MappingError(f"{where}: word_order is big or little")
    if not isinstance(point["address"], int) or point["address"] < 0:
        raise MappingError(f"{where}: address is a register number (0 or more)")


async def read_point(client: AsyncModbusTcpClient, point: dict[str, Any]) -> Any:
    """The value of one point (ModbusException when the server refuses the read)."""
    table, address = point.get("table", "holding"), int(point["address"])
    device_id = int(point.get("unit_id", 1))
    if table in ("coil", "discrete"):
        reader = client.read_coils if table == "coil" else client.read_discrete_inputs
        response = await reader(address, count=1, device_id=device_id)
        if response.isError():
            raise ModbusException(str(response))
        return bool(response.bits[0])
    datatype = getattr(client.DATATYPE, point.get("datatype", "uint16").upper())
    reader = client.read_holding_registers if table == "holding" else client.read_input_registers
    response = await reader(address, count=datatype.value[1], device_id=device_id)
    if response.isError():
        raise ModbusException(str(response))
    return client.convert_from_registers(response.registers, datatype, word_order=point.get("word_order", "big"))


async def poll(client: AsyncModbusTcpClient, rule: Rule, stats: Stats) -> tuple[Item | None, Exception | None]:
    """One poll of a rule's points as one item (None: an outage before any reading), and the outage that cut it
    short (if one did)."""
    stamp = iso_ms(time.time() * 1000)
    readings = []
    outage: Exception | None = None
    for point in rule.points:
        try:
            value = await read_point(client, point)
        except OUTAGE as exc:
            outage = exc
            break
        except ModbusException as exc:
            stats.malformed["modbus"] += 1
            log.warning("modbus read of %s (%s) failed: %s", point["key"], point["address"], exc)
            continue
        readings.append(Reading(str(point["device"]), str(point["key"]), value, stamp))
    if outage is not None and not readings:
        return None, outage
    stats.received += 1
    updates, skipped = rule.updates(readings, {}, stamp)
    stats.skipped += skipped
    return Item(updates), outage


def modbus_source(server: str, mapping: IngestMapping, interval: float) -> Source:
    rules = mapping.for_source("modbus")
    if not rules:
        raise ValueError("the mapping has no modbus rule")
    for rule in rules:
        for point in rule.points:
            _check(point, rule)
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--server {server!r}: expected host:port")

    async def start(queue: asyncio.Queue[Item | None], stats: Stats) -> Callable[[], Awaitable[None]]:
        # reconnect_delay 0: no reconnection of pymodbus's own (backing off to 5 minutes), each poll reconnects;
        # retries 0: the next poll is the retry, and a server that does not answer holds a poll one timeout, not four
        client = AsyncModbusTcpClient(host, port=int(port), reconnect_delay=0, retries=0,
                                      timeout=min(3.0, max(1.0, interval)))  # fmt: skip
        outage = Outage(f"the Modbus server at {server}", "polling again every interval")

        async def loop() -> None:
            while True:
                started = time.monotonic()
                if not client.connected and not await client.connect():
                    outage.failed("cannot connect")
                else:
                    for rule in rules:
                        item, lost = await poll(client, rule, stats)
                        if item is not None:
                            queue.put_nowait(item)
                        if lost is not None:
                            outage.failed(f"connection lost ({lost})")
                            client.close()
                            break
                    else:
                        outage.over()
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

        task = asyncio.create_task(loop())

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            client.close()

        return stop

    return start
