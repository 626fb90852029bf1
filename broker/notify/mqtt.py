"""MQTT delivery of notifications (clause 7, MQTT binding; clause 5.2.15, endpoint notifierInfo).

endpoint.uri is mqtt[s]://[user[:password]@]host[:port]/topic: the notification is published to `topic` (the path
without its leading '/', percent-decoded), on port 1883 (mqtt) or 8883 (mqtts, over TLS) unless one is given.
notifierInfo MQTT-Version (mqtt3.1.1 | mqtt5.0, default mqtt5.0) and MQTT-QoS (0 | 1 | 2, default 0).

* MQTT 5.0: the payload is the notification itself (the bytes an HTTP POST would carry); the metadata an HTTP POST
  carries as headers (Content-Type, Link, NGSILD-Tenant, the receiverInfo pairs) are user properties, and the
  content type is also the Content Type property.
* MQTT 3.1.1 has no properties: the payload is {"metadata": {header: value, ...}, "body": notification}.

One connection per (scheme, host, port, user, password, version) is kept open and shared by every subscription
that uses it; a publish that fails on a kept connection reconnects once at once, and any other failure drops the
connection, so that the next attempt connects again. A QoS 1 or 2 publish succeeds when the MQTT broker
acknowledged it; QoS 0 when it was written to the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker.core.subscriptions import MQTT_QOS, MQTT_VERSIONS, Endpoint

log = logging.getLogger("agora.notify")
# aiomqtt / paho log here: a refused connection or a restarted MQTT broker is already logged by us (INFO) and
# recorded in the delivery state, so their warnings about the same are quietened unless the logger is configured.
client_log = logging.getLogger("agora.notify.mqtt")
if client_log.level == logging.NOTSET:
    client_log.setLevel(logging.ERROR)
_BACKSTOP = 1.0  # seconds beyond an attempt's timeout before it is cancelled


@dataclass(frozen=True)
class Target:
    """Where and how one endpoint publishes; `connection` is what may share one MQTT connection."""

    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None
    version: str
    topic: str
    qos: int

    @property
    def connection(self) -> tuple[bool, str, int, str | None, str | None, str]:
        return (self.tls, self.host, self.port, self.username, self.password, self.version)


def target(endpoint: Endpoint) -> Target:
    parts = urlsplit(endpoint.uri)
    tls = parts.scheme.lower() == "mqtts"
    info = dict(endpoint.notifier_info)
    return Target(
        tls=tls,
        host=parts.hostname or "",
        port=parts.port or (8883 if tls else 1883),
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        version=info.get("MQTT-Version", MQTT_VERSIONS[0]),
        topic=unquote(parts.path[1:]),
        qos=int(info.get("MQTT-QoS", MQTT_QOS[0])),
    )


def message(version: str, content: bytes, headers: dict[str, str]) -> tuple[bytes, Properties | None]:
    """The payload and (MQTT 5) properties of a notification whose HTTP form is `content` with `headers`."""
    if version == "mqtt3.1.1":
        return orjson.dumps({"metadata": headers, "body": orjson.Fragment(content)}), None
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if "Content-Type" in headers:
        properties.ContentType = headers["Content-Type"]
    properties.UserProperty = list(headers.items())
    return content, properties


class _Connection:
    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client


class MqttTransport:
    def __init__(self, *, tls_context: ssl.SSLContext | None = None) -> None:
        self._connections: dict[tuple[Any, ...], _Connection] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self._tls_context = tls_context

    async def attempt(self, endpoint: Endpoint, content: bytes, headers: dict[str, str], timeout: float) -> bool:
        where = target(endpoint)
        payload, properties = message(where.version, content, headers)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            # aiomqtt bounds the connect and the publish by what is left of the timeout and cleans up after itself;
            # cancelling it half-way leaves it in a state it reports noisily, so the outer bound is only a backstop.
            await asyncio.wait_for(self._publish(where, payload, properties, deadline), timeout + _BACKSTOP)
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            log.info("notification to %s:%s/%s failed: %s", where.host, where.port, where.topic, exc or type(exc))
            return False
        return True

    async def _publish(self, where: Target, payload: bytes, properties: Properties | None, deadline: float) -> None:
        connection, reused = await self._connect(where, deadline)
        try:
            try:
                await connection.client.publish(
                    where.topic, payload, qos=where.qos, properties=properties, timeout=_left(deadline)
                )
            except aiomqtt.MqttError:
                if not reused:
                    raise
                # The kept connection went away since its last use (the MQTT broker restarted, say): connect again.
                await self._drop(where.connection, connection)
                connection, _ = await self._connect(where, deadline)
                await connection.client.publish(
                    where.topic, payload, qos=where.qos, properties=properties, timeout=_left(deadline)
                )
        except BaseException:
            # A failed or timed-out publish leaves the connection in doubt: the next attempt makes a new one.
            await self._drop(where.connection, connection)
            raise

    async def _connect(self, where: Target, deadline: float) -> tuple[_Connection, bool]:
        key = where.connection
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            connection = self._connections.get(key)
            if connection is not None:
                return connection, True
            client = aiomqtt.Client(
                where.host,
                where.port,
                username=where.username,
                password=where.password,
                identifier=f"agora-{uuid.uuid4().hex[:16]}",
                protocol=aiomqtt.ProtocolVersion.V311 if where.version == "mqtt3.1.1" else aiomqtt.ProtocolVersion.V5,
                tls_context=(self._tls_context or ssl.create_default_context()) if where.tls else None,
                timeout=_left(deadline),
                logger=client_log,
            )
            try:
                await client.__aenter__()
            except BaseException:  # refused, unreachable or no CONNACK in time: release what the try took
                await _close(_Connection(client))
                raise
            connection = self._connections[key] = _Connection(client)
            return connection, False

    async def _drop(self, key: tuple[Any, ...], connection: _Connection | None = None) -> None:
        """Forget the connection of `key` (only if it is still `connection`, when given) and close it."""
        current = self._connections.get(key)
        if current is None or (connection is not None and current is not connection):
            return
        del self._connections[key]
        await _close(current)

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await _close(connection)


def _left(deadline: float) -> float:
    return max(deadline - asyncio.get_running_loop().time(), 0.01)


async def _close(connection: _Connection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.client.__aexit__(None, None, None), 1.0)
