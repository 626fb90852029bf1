"""`agora ingest mqtt`: MQTT payloads into NGSI-LD attribute updates, at least once (record 0380).

The MQTT client is paho-mqtt's, in manual acknowledgement mode: a QoS 1 message is acknowledged (PUBACK) only
after the broker accepted the writes of its batch, in the order the messages arrived (MQTT 3.1.1 clause 4.6,
MQTT 5 clause 4.6). The session is persistent (a fixed client id; MQTT 5: clean start off and a session expiry
interval, MQTT 3.1.1: clean session off), so what arrives while the ingester is down, and what it had received
but not yet acknowledged, is delivered again when it reconnects. MQTT 5's Receive Maximum lets the MQTT broker
keep ``receive_maximum`` unacknowledged messages in flight, which the batches need.

paho runs its network loop in a thread; each message is handed to the asyncio loop, decoded and mapped there,
and queued for the :class:`~adapters.live.writer.Writer`.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.live.mapping import IngestMapping, topic_filter
from adapters.live.payloads import PayloadError, SparkplugState, decode, iso_ms
from adapters.live.run import Source
from adapters.live.writer import Item, Stats

log = logging.getLogger("agora.ingest")
SESSION_EXPIRY = 7 * 24 * 3600  # seconds the MQTT broker keeps the session (and queues) while we are away


@dataclass(frozen=True)
class MqttOptions:
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "agora-ingest"
    protocol: str = "5"  # or "3.1.1"
    qos: int = 1
    receive_maximum: int = 10000
    username: str | None = None
    password: str | None = None


class Translator:
    """Payloads into queue items: the rule of the topic, the readings of the payload, the updates of the rule."""

    def __init__(self, mapping: IngestMapping, stats: Stats) -> None:
        self.mapping = mapping
        self.stats = stats
        self.sparkplug = SparkplugState()

    def item(self, topic: str, payload: bytes, received_ms: float) -> Item:
        self.stats.received += 1
        routed = self.mapping.route(topic)
        if routed is None:
            self.stats.unmatched += 1
            log.debug("no rule matches topic %s", topic)
            return Item([])
        rule, captures = routed
        try:
            decoded = decode(topic, payload, rule, captures.get("device", ""), received_ms, self.sparkplug)
            updates, skipped = rule.updates(decoded.readings, {**captures, **decoded.captures}, iso_ms(received_ms))
        except (PayloadError, ValueError) as exc:  # ValueRefused, MappingError of a template: this payload only
            self.stats.malformed[rule.format] += 1
            log.warning("malformed %s payload on %s: %s", rule.format, topic, exc)
            return Item([])
        self.stats.skipped += skipped
        for label, reason in decoded.untranslated:
            self._untranslated(rule.format, label, reason, topic)
        return Item(updates)

    def _untranslated(self, fmt: str, label: str, reason: str, topic: str) -> None:
        """Counted each time, logged the first time for each kind of value (a device may send one a second)."""
        key = f"{fmt} {label}"
        if not self.stats.untranslated[key]:
            log.warning("not translated, on %s: %s (counted in the summary from now on)", topic, reason)
        self.stats.untranslated[key] += 1


class MqttSource:
    """A persistent MQTT session whose messages go, translated, to ``queue``; ``ack`` is called by the writer."""

    def __init__(self, options: MqttOptions, mapping: IngestMapping, queue: asyncio.Queue[Item | None],
                 translator: Translator) -> None:  # fmt: skip
        self.options = options
        self.filters = sorted({topic_filter(r.match) for r in mapping.for_source("match") if r.match})
        self.queue = queue
        self.translator = translator
        self.loop = asyncio.get_running_loop()
        self.generation = 0  # connections made: an acknowledgement is sent only on the connection that received
        self.connected = asyncio.Event()
        # paho's thread appends, the loop takes: deque appends and pops are atomic
        self.inbox: collections.deque[tuple[str, bytes, float, tuple[int, int, int], bool]] = collections.deque()
        self.client = self._client()

    def _client(self) -> mqtt.Client:
        v5 = self.options.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if self.options.username:
            client.username_pw_set(self.options.username, self.options.password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 5)
        return client

    def start(self) -> None:
        parts = urlsplit(self.options.url)
        if parts.scheme == "mqtts":
            self.client.tls_set()
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        kwargs: dict[str, Any] = {}
        if self.options.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY
            properties.ReceiveMaximum = self.options.receive_maximum
            kwargs = {"clean_start": False, "properties": properties}
        self.client.connect_async(parts.hostname or "127.0.0.1", port, keepalive=30, **kwargs)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # a message written after this is not acknowledged: the session gives it again (DUP), checked against
        # the history then
        self.generation += 1

    # -- paho's thread ------------------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        self.generation += 1
        log.info("connected to %s (session present: %s)", self.options.url, flags.session_present)
        for topic in self.filters:
            client.subscribe(topic, qos=self.options.qos)
        self.loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        log.warning("disconnected from the MQTT broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        token = (self.generation, message.mid, message.qos)
        self.inbox.append((message.topic, bytes(message.payload), time.time() * 1000, token, bool(message.dup)))
        if len(self.inbox) == 1:  # wake the loop once per burst, not once per message (a syscall each)
            self.loop.call_soon_threadsafe(self._take)

    # -- the asyncio loop ---------------------------------------------------------------------------------------
    def _take(self) -> None:
        while self.inbox:
            topic, payload, received_ms, token, dup = self.inbox.popleft()
            item = self.translator.item(topic, payload, received_ms)
            item.ack = functools.partial(self._ack, token)
            item.redelivered = dup
            self.queue.put_nowait(item)

    def _ack(self, token: tuple[int, int, int]) -> None:
        generation, mid, qos = token
        if qos and generation == self.generation:  # after a reconnect the MQTT broker sends it again anyway
            self.client.ack(mid, qos)


def mqtt_source(options: MqttOptions, mapping: IngestMapping) -> Source:
    """The :data:`~adapters.live.run.Source` of an MQTT session."""
    if not mapping.for_source("match"):
        raise ValueError("the mapping has no MQTT rule (a rule with `match`)")

    async def start(queue: asyncio.Queue[Item | None], stats: Stats) -> Callable[[], Awaitable[None]]:
        source = MqttSource(options, mapping, queue, Translator(mapping, stats))
        source.start()

        async def stop() -> None:
            await asyncio.to_thread(source.stop)

        return stop

    return start
