"""Delivery of one notification: headers, per-endpoint timeout, retries with backoff (clause 5.2.15), over a
Transport chosen by the endpoint's scheme: HTTP POST here, MQTT publish in broker.notify.mqtt."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import httpcore
import httpx
import orjson

from broker.core.errors import OutboundRefused
from broker.core.subscriptions import Endpoint
from broker.guards import GuardedBackend, OutboundPolicy
from broker.notify.http11 import Http11Client, ResponseError
from broker.notify.mqtt import MqttTransport

log = logging.getLogger("agora.notify")

LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = 10.0  # seconds, when the endpoint sets none
    attempts: int = 3
    backoff: float = 0.5  # seconds before the 2nd attempt, doubled each time
    cooldown: float = 10.0  # seconds without attempts after a failed notification; endpoint.cooldown overrides it


def request_parts(
    endpoint: Endpoint, body: dict[str, Any], context: Any, link_url: str | None, tenant: str
) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers of the POST: ld+json carries the @context in the body, json in a Link header."""
    headers = {key: value for key, value in endpoint.receiver_info}
    if endpoint.accept == LD_JSON:
        body = {"@context": context, **body}
        headers["Content-Type"] = LD_JSON
    elif endpoint.accept == GEO_JSON:  # GeoJSON carries its @context in the body (clause 6.3.15)
        body = {**body, "@context": context}
        headers["Content-Type"] = GEO_JSON
    else:
        headers["Content-Type"] = "application/json"
        if link_url is not None:
            headers["Link"] = f'<{link_url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    return orjson.dumps(body), headers


class Transport(Protocol):
    async def attempt(self, endpoint: Endpoint, content: bytes, headers: dict[str, str], timeout: float) -> bool:
        """One try, bounded by `timeout` seconds; True when the receiver took the notification. Never raises for a
        delivery failure (it is logged and answered False)."""
        ...

    async def aclose(self) -> None: ...


async def deliver(
    transport: Transport, endpoint: Endpoint, content: bytes, headers: dict[str, str], policy: RetryPolicy
) -> bool:
    """Try until the receiver takes the notification or the attempts run out; True when it was taken."""
    timeout = endpoint.timeout or policy.timeout
    pause = policy.backoff
    for attempt in range(1, policy.attempts + 1):
        if await transport.attempt(endpoint, content, headers, timeout):
            return True
        if attempt < policy.attempts:
            await asyncio.sleep(pause * 2 ** (attempt - 1))
    return False


# What a failed POST raises, from httpx (a given client), httpcore (https), broker.notify.http11 (http) and asyncio.
_FAILURES = (
    httpx.HTTPError,
    httpcore.ConnectError,
    httpcore.TimeoutException,
    httpcore.ProtocolError,
    httpcore.NetworkError,
    httpcore.UnsupportedProtocol,
    TimeoutError,
    OSError,
    ValueError,
    ResponseError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
)


class HttpTransport:
    """POST; a 2xx answer is success.

    By default http:// endpoints get the small HTTP/1.1 client of broker.notify.http11 (a tenth of the CPU of a
    generic client) and https:// ones httpcore's connection pool, the transport under httpx without httpx's
    client layers (request building, auth, redirects, cookies), which a notification needs none of. Given an
    httpx client (tests give one with a mock transport), it uses that instead.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        owned: bool = True,
        max_connections: int = 64,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.client = client
        self._owned = owned
        # Every connection of the broker's own clients goes to an address the outbound guard checked (record 0205).
        guard = outbound or OutboundPolicy.open()
        self._pool = (
            httpcore.AsyncConnectionPool(max_connections=max_connections, network_backend=GuardedBackend(guard))
            if client is None
            else None
        )
        self._plain = Http11Client(connect=guard.open_connection) if client is None else None

    async def attempt(self, endpoint: Endpoint, content: bytes, headers: dict[str, str], timeout: float) -> bool:
        uri = endpoint.uri
        try:
            # The whole exchange is bounded, not only each socket operation: a trickling endpoint also times out.
            async with asyncio.timeout(timeout):
                status = await self._post(uri, content, headers, timeout)
        except _FAILURES as exc:
            log.info("notification to %s failed: %s", uri, type(exc).__name__)
            return False
        except OutboundRefused as exc:
            log.warning("notification to %s refused by the outbound policy: %s", uri, exc.detail)
            return False
        if 200 <= status < 300:
            return True
        log.info("notification to %s answered %s", uri, status)
        return False

    async def _post(self, uri: str, content: bytes, headers: dict[str, str], timeout: float) -> int:
        if self._pool is None:
            assert self.client is not None
            return (await self.client.post(uri, content=content, headers=headers)).status_code
        if self._plain is not None and uri[:7].lower() == "http://":
            return await self._plain.post(uri, headers, content)
        listed = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        listed.append((b"Content-Length", str(len(content)).encode()))
        limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        response = await self._pool.request(
            "POST", uri, headers=listed, content=content, extensions={"timeout": limits}
        )
        return response.status

    async def aclose(self) -> None:
        if self._plain is not None:
            await self._plain.aclose()
        if self._pool is not None:
            await self._pool.aclose()
        elif self._owned and self.client is not None:
            await self.client.aclose()


class ByScheme:
    """The transport of an endpoint, by the scheme of its URI. `checked` schemes (MQTT, whose client library makes
    its own connections) are held to the outbound policy before each attempt; the HTTP transports check at each
    connection."""

    def __init__(
        self,
        transports: dict[str, Transport],
        outbound: OutboundPolicy | None = None,
        checked: frozenset[str] = frozenset({"mqtt", "mqtts"}),
    ) -> None:
        self._transports = transports
        self._outbound = outbound or OutboundPolicy.open()
        self._checked = checked

    async def attempt(self, endpoint: Endpoint, content: bytes, headers: dict[str, str], timeout: float) -> bool:
        scheme = endpoint.uri.split(":", 1)[0].lower()
        transport = self._transports.get(scheme)
        if transport is None:  # validation only lets known schemes in
            log.warning("no transport for notification endpoint %s", endpoint.uri)
            return False
        if scheme in self._checked:
            try:
                await self._outbound.check(endpoint.uri, "notification endpoint")
            except OutboundRefused as exc:
                log.warning("%s", exc.detail)
                return False
        return await transport.attempt(endpoint, content, headers, timeout)

    async def aclose(self) -> None:
        for transport in {id(t): t for t in self._transports.values()}.values():
            await transport.aclose()


def endpoint_transports(outbound: OutboundPolicy | None = None) -> ByScheme:
    """HTTP(S) and MQTT(S) transports of their own, held to the outbound policy: what a notifier without an httpx
    client of its own delivers with (the periodic and the csource notifiers)."""
    http = HttpTransport(outbound=outbound)
    mqtt = MqttTransport()
    return ByScheme({"http": http, "https": http, "mqtt": mqtt, "mqtts": mqtt}, outbound)
