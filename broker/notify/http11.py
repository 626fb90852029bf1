"""A small HTTP/1.1 client for notification POSTs to plain http:// endpoints.

Measured on this machine, one POST through httpcore (the transport under httpx) costs about 425 us of CPU, and
the same exchange over asyncio streams about 40 us: at the notification rates a broker must sustain, the generic
client was half of the notifier's time. A notification needs very little of HTTP: one POST with a
Content-Length body, the status code, and the response body read off the connection so that it can be reused.
That is all this does; https:// endpoints (TLS) still go through httpcore.

Connections are kept alive per (host, port) and reused; a reused connection that the server closed meanwhile is
detected by its EOF and the request is sent once more on a fresh one. Responses are framed by Content-Length, by
chunked transfer coding, or by the end of the connection (HTTP/1.0, Connection: close).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

_MAX_LINE = 65_536


class ResponseError(Exception):
    """The endpoint's answer is not a well-formed HTTP/1.x response."""


class _Closed(Exception):
    """A kept-alive connection turned out closed before any answer: the request may be sent again."""


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


Connect = Callable[[str, int], Awaitable[Connection]]


class Http11Client:
    def __init__(self, max_idle_per_host: int = 16, connect: Connect | None = None) -> None:
        self.max_idle = max_idle_per_host
        #: How a new connection is made: the outbound guard's (broker.guards) connects to checked addresses only.
        self._connect: Connect = connect or asyncio.open_connection
        self._idle: dict[tuple[str, int], list[Connection]] = {}

    async def post(self, url: str, headers: dict[str, str], content: bytes) -> int:
        """POST `content` to `url`; the status code. Raises OSError, ResponseError or ValueError (bad URL)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url!r}")
        key = (parts.hostname, parts.port or 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(content)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content
        reused = self._take(key)
        if reused is not None:
            try:
                return await self._exchange(key, reused, request)
            except _Closed:
                pass  # the server closed it while idle: once more on a new connection
        connection = await self._connect(*key)
        try:
            return await self._exchange(key, connection, request)
        except _Closed as exc:
            raise ResponseError("the connection closed before an answer") from exc

    def _take(self, key: tuple[str, int]) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()  # closed by the server while idle
        return None

    async def _exchange(self, key: tuple[str, int], connection: Connection, request: bytes) -> int:
        reader, writer = connection
        keep = False
        try:
            writer.write(request)
            await writer.drain()
            status, keep = await _read_response(reader)
            return status
        finally:
            if keep and len(self._idle.setdefault(key, [])) < self.max_idle:
                self._idle[key].append(connection)
            else:
                writer.close()

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for _, writer in connections:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the connection may be reused), the body read and dropped."""
    line = await reader.readline()
    if not line:
        raise _Closed()
    version, status = _status_line(line)
    headers = await _headers(reader)
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
        return await _read_response(reader)
    if status in (204, 304):
        return status, keep
    if headers.get("transfer-encoding", "").lower() == "chunked":
        await _skip_chunks(reader)
    elif "content-length" in headers:
        await reader.readexactly(_length(headers["content-length"]))
    else:
        await reader.read()  # framed by the end of the connection
        keep = False
    return status, keep


def _status_line(line: bytes) -> tuple[str, int]:
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ResponseError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return parts[0], int(parts[1])


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return headers
        if not line or len(line) > _MAX_LINE:
            raise ResponseError("truncated or oversized response headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ResponseError(f"not a header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readline()
        if not size_line:
            raise ResponseError("truncated chunked body")
        size = _length(size_line.split(b";", 1)[0].strip().decode("latin-1"), base=16)
        if size == 0:
            await _headers(reader)  # trailers, up to the blank line
            return
        await reader.readexactly(size + 2)  # the chunk and its CRLF


def _length(text: str, base: int = 10) -> int:
    try:
        value = int(text, base)
    except ValueError as exc:
        raise ResponseError(f"bad length {text!r}") from exc
    if value < 0:
        raise ResponseError(f"bad length {text!r}")
    return value
