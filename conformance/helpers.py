"""The servers the kit runs on the auditor's machine, for the broker under test to reach:

- `Receiver`: an HTTP server that accepts notifications (POST to any path) and keeps them per path;
- `ContextServer`: an HTTP server of user @context documents (GET), published by the cases at run time;
- `MqttListener`: an MQTT client subscribed on the auditor's MQTT broker, keeping messages per topic.

Each binds to a host and port the auditor chooses (port 0: any free port) and advertises `public_host` in the URLs
given to the broker, so that a remote broker can reach a kit behind another name or address.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when the body is not JSON


class _Server:
    """A threading HTTP server on (host, port), advertised as http://public_host:port."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_host: str | None = None) -> None:
        handler = type("Handler", (self.handler,), {"owner": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.public_host = public_host or (host if host not in ("0.0.0.0", "::", "") else "127.0.0.1")
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.public_host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ReceiverHandler(BaseHTTPRequestHandler):
    owner: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        self.owner.add(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.owner.status_for(self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the kit prints its own report
        pass


class Receiver(_Server):
    """Notifications received, per path; each case takes a fresh path with `endpoint()`."""

    handler = _ReceiverHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_host: str | None = None) -> None:
        super().__init__(host, port, public_host)
        self._received: dict[str, list[Received]] = {}
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def endpoint(self, failing: bool = False) -> tuple[str, str]:
        """A fresh (url, path) to give a subscription; it answers 200, or 500 when `failing`."""
        path = f"/notify/{uuid.uuid4().hex}"
        if failing:
            self._failing.add(path)
        return self.base_url + path, path

    def status_for(self, path: str) -> int:
        # 5.8.6: a notification counts as delivered when the answer is "200 OK"
        return 500 if path in self._failing else 200

    def add(self, item: Received) -> None:
        with self._lock:
            self._received.setdefault(item.path, []).append(item)

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return list(self._received.get(path, []))


class _ContextHandler(BaseHTTPRequestHandler):
    owner: ContextServer

    def do_GET(self) -> None:
        document = self.owner.document(self.path)
        if document is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        raw = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/ld+json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ContextServer(_Server):
    """User @context documents, published by the cases under fresh paths."""

    handler = _ContextHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_host: str | None = None) -> None:
        super().__init__(host, port, public_host)
        self._documents: dict[str, Any] = {}

    def publish(self, document: Any) -> str:
        path = f"/contexts/{uuid.uuid4().hex}.jsonld"
        self._documents[path] = document
        return self.base_url + path

    def missing_url(self) -> str:
        """A URL on this server that answers 404 (an @context that cannot be retrieved)."""
        return f"{self.base_url}/contexts/missing-{uuid.uuid4().hex}.jsonld"

    def document(self, path: str) -> Any:
        return self._documents.get(path)


@dataclass(frozen=True)
class MqttMessage:
    topic: str
    payload: Any
    user_properties: dict[str, str]


class MqttListener:
    """An MQTT 5 client subscribed to `<prefix>/#` on the auditor's MQTT broker (mqtt://host:port)."""

    def __init__(self, url: str, prefix: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"--mqtt expects mqtt://host[:port], got {url!r}")
        self.prefix = prefix
        self._messages: dict[str, list[MqttMessage]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if parts.scheme == "mqtts":
            self._client.tls_set()
        if parts.username:
            self._client.username_pw_set(parts.username, parts.password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message
        self._host, self._port = parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect(self._host, self._port)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise ConnectionError(f"no MQTT subscription on {self._host}:{self._port} within {timeout} s")

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def topic(self) -> str:
        return f"{self.prefix}/{uuid.uuid4().hex[:12]}"

    def messages(self, topic: str) -> list[MqttMessage]:
        with self._lock:
            return list(self._messages.get(topic, []))

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            payload: Any = json.loads(message.payload)
        except ValueError:
            payload = message.payload.decode("utf-8", errors="replace")
        props = dict(getattr(message.properties, "UserProperty", None) or [])
        with self._lock:
            self._messages.setdefault(message.topic, []).append(MqttMessage(message.topic, payload, props))
