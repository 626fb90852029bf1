"""The forwarding client (broker.federation) against a real HTTP server on loopback: headers, Via loops, timeout,
cooldown, garbage and 5xx answers (clauses 4.3.6.5, 4.3.6.6, 6.3.x)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from broker.core.caller import Caller
from broker.core.registrations import Registration, compile_registration
from broker.federation import Forwarder, SourceError, SourceReply, via_holds
from broker.guards import OutboundPolicy

pytestmark = pytest.mark.asyncio


class _Source(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/hang"):
            time.sleep(1.5)
        if self.path.startswith("/garbage"):
            self._send(200, b"<html>not json</html>")
        elif self.path.startswith("/fail"):
            self._send(500, b'{"type": "oops"}')
        else:
            self._send(200, json.dumps({"path": self.path, "headers": dict(self.headers)}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()  # else the listening socket is left to the garbage collector, a ResourceWarning later on


def _reg(endpoint: str, **members: Any) -> Registration:
    doc = {"id": "urn:ngsi-ld:ContextSourceRegistration:t", "type": "ContextSourceRegistration"}
    doc |= {"endpoint": endpoint, "information": [{"entities": [{"type": ["https://x/T"]}]}], **members}
    return compile_registration("", doc)


def _forwarder(**kwargs: Any) -> Forwarder:
    return Forwarder("agora-a", OutboundPolicy.open(), **kwargs)


async def test_headers_carry_tenant_context_source_info_and_via(source: str) -> None:
    csi = [{"key": "jsonldContext", "value": "https://ctx.example/c.jsonld"}, {"key": "X-Api", "value": "k1"}]
    reg = _reg(source, tenant="water", contextSourceInfo=csi)
    fwd = _forwarder()
    reply = await fwd.send(reg, "GET", "/ngsi-ld/v1/entities", caller=Caller(), params={"type": "T"}, via="1.1 z")
    await fwd.aclose()
    assert isinstance(reply, SourceReply) and reply.ok
    got = {k.lower(): v for k, v in reply.body["headers"].items()}
    assert reply.body["path"] == "/ngsi-ld/v1/entities?type=T"
    assert got["ngsild-tenant"] == "water"
    assert got["link"].startswith("<https://ctx.example/c.jsonld>;")
    assert got["x-api"] == "k1"
    assert got["via"] == "1.1 z, 1.1 agora-a"


async def test_the_request_link_is_sent_when_the_registration_names_no_context(source: str) -> None:
    fwd = _forwarder()
    reply = await fwd.send(_reg(source), "GET", "/x", caller=Caller(tenant="t2"), link="https://c.example/a")
    await fwd.aclose()
    assert isinstance(reply, SourceReply)
    got = {k.lower(): v for k, v in reply.body["headers"].items()}
    assert got["link"].startswith("<https://c.example/a>;") and got["ngsild-tenant"] == "t2"


async def test_a_via_holding_this_broker_is_a_loop_error_without_a_request(source: str) -> None:
    assert via_holds("1.1 b, 1.1 agora-a", "agora-a") and not via_holds("1.1 agora-ab", "agora-a")
    reply = await _forwarder().send(_reg(source), "GET", "/x", caller=Caller(), via="1.1 agora-a, 1.1 b")
    assert isinstance(reply, SourceError) and reply.kind == "loop"


async def test_a_via_holding_the_registrations_alias_is_not_sent_to_it(source: str) -> None:
    """5.12: a registration whose contextSourceAlias is in the Via matches no more (record 0472)."""
    reg = _reg(source, contextSourceAlias="urn:ngsi-ld:ContextSource:water")
    fwd = _forwarder()
    reply = await fwd.send(reg, "GET", "/x", caller=Caller(), via="1.1 urn:ngsi-ld:ContextSource:water, 1.1 c")
    assert isinstance(reply, SourceError) and reply.kind == "loop" and "water" in reply.detail
    other = await fwd.send(reg, "GET", "/x", caller=Caller(), via="1.1 urn:ngsi-ld:ContextSource:waterworks")
    await fwd.aclose()
    assert isinstance(other, SourceReply) and other.ok


async def test_a_hanging_source_times_out_and_then_cools_down(source: str) -> None:
    reg = _reg(source, management={"timeout": 200, "cooldown": 60_000})
    fwd = _forwarder()
    started = time.monotonic()
    first = await fwd.send(reg, "GET", "/hang", caller=Caller())
    assert isinstance(first, SourceError) and first.kind == "timeout"
    assert time.monotonic() - started < 1.4  # the source answers after 1.5 s: the timeout cut it short
    second = await fwd.send(reg, "GET", "/ok", caller=Caller())
    await fwd.aclose()
    assert isinstance(second, SourceError) and second.kind == "cooldown"
    assert second.warning().startswith(f"199 {source.removeprefix('http://')} ")


async def test_garbage_and_500_are_answers_of_the_source_not_errors_of_the_broker(source: str) -> None:
    fwd = _forwarder(default_cooldown=0.0)
    garbage = await fwd.send(_reg(source), "GET", "/garbage", caller=Caller())
    failed = await fwd.send(_reg(source), "GET", "/fail", caller=Caller())
    await fwd.aclose()
    assert isinstance(garbage, SourceError) and garbage.kind == "garbage" and garbage.status == 200
    assert isinstance(failed, SourceReply) and failed.status == 500 and not failed.ok


async def test_an_unreachable_source_and_a_refused_address_are_errors(source: str) -> None:
    down = await _forwarder().send(_reg("http://127.0.0.1:9"), "GET", "/x", caller=Caller())
    assert isinstance(down, SourceError) and down.kind == "unreachable"
    public_only = Forwarder("agora-a", OutboundPolicy())
    refused = await public_only.send(_reg(source), "GET", "/x", caller=Caller())
    assert isinstance(refused, SourceError) and refused.kind == "refused"
