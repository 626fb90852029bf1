"""The notification HTTP/1.1 client (broker.notify.http11) against real local servers of every framing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from broker.notify.http11 import Http11Client, ResponseError

pytestmark = pytest.mark.asyncio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    start = (await reader.readline()).decode()
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return start, headers, body


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/notify?x=1"


async def test_keep_alive_reuses_one_connection_and_sends_what_it_should() -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                seen.append(await _read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server, url = await _serve(handler)
    client = Http11Client()
    for n in range(3):
        assert await client.post(url, {"Content-Type": "application/json", "X-N": str(n)}, b'{"a":1}') == 200
    await client.aclose()
    server.close()
    assert connections == 1
    start, headers, body = seen[2]
    assert start.startswith("POST /notify?x=1 HTTP/1.1")
    assert headers["x-n"] == "2" and headers["content-length"] == "7" and headers["host"].startswith("127.0.0.1:")
    assert body == b'{"a":1}'


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 201 Created\r\n\r\nbody until the end",  # HTTP/1.0: framed by the close
        b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad",
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ],
)
async def test_every_framing_gives_the_status(answer: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, url = await _serve(handler)
    client = Http11Client()
    status = await client.post(url, {}, b"{}")
    expected = {b"HTTP/1.0 201": 201, b"HTTP/1.1 500": 500, b"HTTP/1.1 202": 202, b"HTTP/1.1 100": 204}[answer[:12]]
    assert status == expected
    await client.aclose()
    server.close()


async def test_a_kept_connection_closed_by_the_server_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # keep-alive promised ...
        await writer.drain()
        writer.close()  # ... and closed anyway, as idle timeouts do

    server, url = await _serve(handler)
    client = Http11Client()
    assert await client.post(url, {}, b"1") == 204
    await asyncio.sleep(0.05)
    assert await client.post(url, {}, b"2") == 204
    await client.aclose()
    server.close()


async def test_malformed_answers_and_refused_connections_raise() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await _serve(handler)
    client = Http11Client()
    with pytest.raises(ResponseError):
        await client.post(url, {}, b"{}")
    server.close()
    await server.wait_closed()
    with pytest.raises(OSError):
        await client.post(url, {}, b"{}")
    with pytest.raises(ValueError):
        await client.post("https://127.0.0.1/n", {}, b"{}")
    await client.aclose()
