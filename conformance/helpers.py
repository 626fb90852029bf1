"""The servers the kit runs on the auditor's machine, for the broker under test to reach:

- `Receiver`: an HTTP server that accepts notifications (POST to any path) and keeps them per path;
- `ContextServer`: an HTTP server of user @context documents (GET), published by the cases at run time;
- `MqttListener`: an MQTT client subscribed on the auditor's MQTT broker, keeping messages per topic;
- `SourceServer`: NGSI-LD context sources (clause 4.3.6) that the cases register with the broker under test, each
  holding entities, behaving as told (answering, failing, hanging, looping back) and recording what it was sent.

Each binds to a host and port the auditor chooses (port 0: any free port) and advertises `public_host` in the URLs
given to the broker, so that a remote broker can reach a kit behind another name or address.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx


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


# -- a context source for the distributed operations (clause 4.3.6) ------------------------------------------------
@dataclass
class SourceRequest:
    """One request the broker under test sent to a kit source."""

    method: str
    path: str  # below the source's /ngsi-ld/v1, e.g. "/entities/urn:..."
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any


class KitSource:
    """One NGSI-LD context source of a case: entities it holds (normalized, in the core @context's terms), how it
    behaves, and every request it received. Behaviours: `ok`, `fail` (500 InternalError), `hang` (no answer for
    `hang_seconds`), `garbage` (200 with a body that is not JSON), `loop` (asks the broker under test the same
    question with its Via, as a source that registered the broker back would)."""

    def __init__(self, base_url: str, broker: str | None) -> None:
        self.base_url = base_url
        self.broker = broker
        self.entities: dict[str, dict[str, Any]] = {}
        self.behaviour = "ok"
        self.hang_seconds = 5.0
        self.requests: list[SourceRequest] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The value of a registration's `endpoint` (the source's base URL, clause 5.2.9)."""
        return self.base_url

    def hold(self, *entities: dict[str, Any]) -> None:
        for entity in entities:
            self.entities[entity["id"]] = entity

    def received(self, method: str | None = None) -> list[SourceRequest]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def record(self, request: SourceRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def answer(self, request: SourceRequest) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body this source gives `request`."""
        if self.behaviour == "hang":
            time.sleep(self.hang_seconds)
        if self.behaviour == "fail":
            return _json(500, {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError", "title": "failing"})
        if self.behaviour == "garbage":
            return 200, {"Content-Type": "application/json"}, b"<html>this is not JSON"
        if self.behaviour == "loop":
            return self._ask_broker(request)
        return self._serve(request)

    def _ask_broker(self, request: SourceRequest) -> tuple[int, dict[str, str], bytes]:
        via = ", ".join(v for v in (request.headers.get("via"), f"1.1 {urlsplit(self.base_url).netloc}") if v)
        headers = {"Via": via, "Accept": "application/json"}
        try:
            reply = httpx.request(
                request.method, f"{self.broker}/ngsi-ld/v1{request.path}", params=request.query, headers=headers,
                timeout=10,
            )  # fmt: skip
        except httpx.HTTPError as exc:  # the broker may refuse or close: the loop ended there
            return _json(502, {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError", "detail": repr(exc)})
        return reply.status_code, {"Content-Type": "application/json"}, reply.content

    def _serve(self, request: SourceRequest) -> tuple[int, dict[str, str], bytes]:
        path, method = request.path, request.method
        if path == "/entities" and method == "GET":
            return _json(200, self._query(request.query))
        if path == "/entities" and method == "POST":
            self.hold(request.body)
            return 201, {"Location": f"/ngsi-ld/v1/entities/{request.body.get('id')}"}, b""
        if path.startswith("/entities/"):
            entity_id = unquote(path.split("/")[2])
            entity = self.entities.get(entity_id)
            if entity is None or (method == "GET" and not _of_types(entity, request.query)):
                return _json(404, {"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound", "title": "none"})
            if method == "GET":
                return _json(200, entity)
            if method == "DELETE" and path.count("/") == 2:
                del self.entities[entity_id]
            elif method in ("PATCH", "POST") and isinstance(request.body, dict):
                entity.update({k: v for k, v in request.body.items() if k not in ("id", "type", "@context")})
            return 204, {}, b""
        if path.startswith("/entityOperations/"):
            return _json(200, {"success": [], "errors": []}) if method == "POST" else _json(405, {})
        return _json(404, {"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound", "title": "no such path"})

    def _query(self, query: dict[str, str]) -> list[dict[str, Any]]:
        ids = {i for i in query.get("id", "").split(",") if i}
        found = [e for e in self.entities.values() if _of_types(e, query) and (not ids or e["id"] in ids)]
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", "20"))
        return sorted(found, key=lambda e: str(e["id"]))[offset : offset + limit]


DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def _of_types(entity: dict[str, Any], query: dict[str, str]) -> bool:
    """Whether the entity is of a type the request's `type` selector names (compact or expanded), as a conforming
    source filters a query and a Retrieve Entity (5.7.1.3, 5.7.2.3); no selector: any type."""
    types = {t for t in query.get("type", "").replace("|", ",").split(",") if t}
    return not types or bool({entity["type"], DEFAULT_VOCAB + entity["type"]} & types)


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class _SourceHandler(BaseHTTPRequestHandler):
    owner: SourceServer

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        token, _, rest = parts.path.removeprefix("/cs/").partition("/")
        source = self.owner.source(token)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if source is None or not rest.startswith("ngsi-ld/v1"):
            self._send(404, {}, b"")
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = SourceRequest(self.command, "/" + rest.removeprefix("ngsi-ld/v1").lstrip("/"), query, headers, body)
        request.path = request.path.rstrip("/") if request.path != "/" else request.path
        source.record(request)
        self._send(*source.answer(request))

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the broker gave up waiting (a hanging source): nothing to answer to
            pass

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SourceServer(_Server):
    """Context sources for the cases, one per `new()` under its own path (`/cs/<token>`), all on one port."""

    handler = _SourceHandler

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, public_host: str | None = None, broker: str | None = None
    ) -> None:
        super().__init__(host, port, public_host)
        self.broker = broker.rstrip("/") if broker else None
        self._sources: dict[str, KitSource] = {}

    def new(self) -> KitSource:
        token = uuid.uuid4().hex
        source = KitSource(f"{self.base_url}/cs/{token}", self.broker)
        self._sources[token] = source
        return source

    def source(self, token: str) -> KitSource | None:
        return self._sources.get(token)
