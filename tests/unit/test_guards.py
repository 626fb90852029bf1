"""The outbound guard (broker.guards, record 0205): refused addresses are never connected to, whether named in a
subscription, a registration or a @context, reached through a redirect, or behind a host name; checked against
listeners that record every connection."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from broker.core.errors import OutboundRefused
from broker.core.subscriptions import Endpoint
from broker.guards import OutboundPolicy, classify, guarded_client, policy_for
from broker.http.app import create_app
from broker.notify.delivery import ByScheme, HttpTransport
from broker.settings import Settings
from tests.support.certs import self_signed
from tests.support.listener import Listener, recording_listener, redirector

#: 127.0.0.2 stands for a host the configuration allows; 127.0.0.1 (and so `localhost`) for one it does not.
ALLOWED = "127.0.0.2"
POLICY = OutboundPolicy.parse(f"{ALLOWED}/32")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "refused"),
        ("169.254.170.2", "refused"),
        ("fe80::1", "refused"),
        ("fd00:ec2::254", "refused"),
        ("100.100.100.200", "refused"),
        ("::ffff:169.254.169.254", "refused"),
        ("64:ff9b::a9fe:a9fe", "refused"),
        ("224.0.0.1", "refused"),
        ("255.255.255.255", "refused"),
        ("::", "refused"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "refused"),
        ("0.1.2.3", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12::1", "private"),
        ("93.184.216.34", "public"),
        ("2606:4700::1111", "public"),
    ],
)
def test_addresses_are_classified(address: str, kind: str) -> None:
    assert classify(ipaddress.ip_address(address))[0] == kind


def test_metadata_addresses_are_refused_even_in_the_open_mode() -> None:
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"):
        assert OutboundPolicy.open().refusal(ipaddress.ip_address(address)) is not None
    assert OutboundPolicy.open().refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy_for(False, "").refusal(ipaddress.ip_address("127.0.0.1")) is not None
    assert policy_for(False, "loopback").refusal(ipaddress.ip_address("127.0.0.1")) is None


def test_the_configuration_cannot_allow_the_metadata_addresses() -> None:
    with pytest.raises(ValueError, match="never allowed"):
        OutboundPolicy.parse("169.254.0.0/16")
    with pytest.raises(ValueError):
        OutboundPolicy.parse("not-a-network")


@pytest.fixture
def listener() -> Iterator[Listener]:
    with recording_listener("127.0.0.1") as found:
        yield found


@pytest.fixture
def guarded() -> Iterator[TestClient]:
    """A broker that is not in the open loopback mode (it would listen on every address) and allows ALLOWED."""
    settings = Settings(store="memory://", host="0.0.0.0", outbound_allow=f"{ALLOWED}/32")
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def subscription(uri: str) -> dict[str, object]:
    return {"type": "Subscription", "entities": [{"type": "T"}], "notification": {"endpoint": {"uri": uri}}}


def registration(endpoint: str) -> dict[str, object]:
    return {"type": "ContextSourceRegistration", "information": [{"entities": [{"type": "T"}]}], "endpoint": endpoint}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "169.254.169.254", "2130706433"])
def test_a_refused_notification_endpoint_is_400_naming_the_policy(
    guarded: TestClient, listener: Listener, host: str
) -> None:
    port = listener.port if "169.254" not in host else 80
    response = guarded.post("/ngsi-ld/v1/subscriptions", json=subscription(f"http://{host}:{port}/notify"))
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert "outbound policy" in response.json()["detail"]
    assert guarded.get("/ngsi-ld/v1/subscriptions").json() == []
    assert listener.connections == []


def test_a_refused_endpoint_cannot_come_in_through_an_update(guarded: TestClient, listener: Listener) -> None:
    created = guarded.post("/ngsi-ld/v1/subscriptions", json=subscription(f"http://{ALLOWED}:9/notify"))
    assert created.status_code == 201, created.text
    fragment = {"notification": {"endpoint": {"uri": f"{listener.url}/notify"}}}
    response = guarded.patch(created.headers["Location"], json=fragment)
    assert response.status_code == 400
    assert "AGORA_OUTBOUND_ALLOW" in response.json()["detail"]
    assert (
        guarded.get(created.headers["Location"])
        .json()["notification"]["endpoint"]["uri"]
        .startswith(f"http://{ALLOWED}")
    )


def test_the_open_mode_refuses_metadata_endpoints_and_takes_loopback_ones(client: TestClient) -> None:
    refused = client.post("/ngsi-ld/v1/subscriptions", json=subscription("http://169.254.169.254/latest/meta-data"))
    assert refused.status_code == 400
    assert "metadata" in refused.json()["detail"]
    mqtt = client.post("/ngsi-ld/v1/subscriptions", json=subscription("mqtt://[fe80::1]:1883/topic"))
    assert mqtt.status_code == 400
    assert client.post("/ngsi-ld/v1/subscriptions", json=subscription("http://127.0.0.1:9/n")).status_code == 201


def test_a_refused_context_source_endpoint_is_400(guarded: TestClient, listener: Listener) -> None:
    response = guarded.post("/ngsi-ld/v1/csourceRegistrations", json=registration(listener.url))
    assert response.status_code == 400, response.text
    assert "outbound policy" in response.json()["detail"]
    assert guarded.get("/ngsi-ld/v1/csourceRegistrations").json() == []
    allowed = guarded.post("/ngsi-ld/v1/csourceRegistrations", json=registration(f"http://{ALLOWED}:9"))
    assert allowed.status_code == 201, allowed.text
    assert listener.connections == []


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def test_a_context_redirected_to_a_refused_address_is_never_fetched(guarded: TestClient, listener: Listener) -> None:
    with redirector(f"{listener.url}/context.jsonld", host=ALLOWED) as allowed_url:
        response = guarded.get("/ngsi-ld/v1/entities?type=T", headers=link(f"{allowed_url}/ctx.jsonld"))
    assert response.status_code == 400, response.text
    assert "outbound policy" in response.json()["detail"]
    assert listener.connections == []


def test_a_context_at_a_name_of_a_refused_address_is_never_fetched(guarded: TestClient, listener: Listener) -> None:
    response = guarded.get("/ngsi-ld/v1/entities?type=T", headers=link(f"http://localhost:{listener.port}/c"))
    assert response.status_code == 400
    assert listener.connections == []


def test_the_guarded_client_follows_redirects_among_allowed_hosts_only(listener: Listener) -> None:
    async def fetch(url: str) -> int:
        async with guarded_client(OutboundPolicy.parse("127.0.0.0/8")) as client:
            return (await client.get(url, follow_redirects=True)).status_code

    with redirector(f"{listener.url}/x", host=ALLOWED) as allowed_url:
        assert asyncio.run(fetch(allowed_url)) == 200  # allowed all the way: the listener sees it
        assert len(listener.connections) == 1
        with pytest.raises(OutboundRefused):
            asyncio.run(guarded_fetch(allowed_url))
    assert len(listener.connections) == 1


async def guarded_fetch(url: str) -> int:
    async with guarded_client(POLICY) as client:
        return (await client.get(url, follow_redirects=True)).status_code


async def notify(policy: OutboundPolicy, uri: str) -> bool:
    """One notification attempt through the notifier's HTTP transport under `policy`; whether it was taken."""
    transport = HttpTransport(outbound=policy)
    try:
        endpoint = Endpoint(uri, "application/json", None, None, (), ())
        return await transport.attempt(endpoint, b"{}", {"Content-Type": "application/json"}, 2.0)
    finally:
        await transport.aclose()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_notification_to_a_refused_address_is_never_sent(listener: Listener, host: str, scheme: str) -> None:
    """At send time too: the notifier's transports connect to checked addresses only (a name that changed what it
    resolves to since the subscription was made is caught here)."""

    assert asyncio.run(notify(POLICY, f"{scheme}://{host}:{listener.port}/notify")) is False
    assert listener.connections == []


def test_a_notification_to_an_allowed_address_is_sent(listener: Listener) -> None:
    assert asyncio.run(notify(OutboundPolicy.parse("loopback"), f"{listener.url}/notify")) is True
    assert len(listener.connections) == 1


def test_an_mqtt_notification_to_a_refused_broker_is_never_attempted(listener: Listener) -> None:
    """MQTT endpoints are judged before each attempt: the MQTT client never sees a refused one."""
    attempted: list[str] = []

    class Recording:
        async def attempt(self, endpoint: Endpoint, content: bytes, headers: dict[str, str], timeout: float) -> bool:
            attempted.append(endpoint.uri)
            return True

        async def aclose(self) -> None:
            pass

    async def send(uri: str, policy: OutboundPolicy) -> bool:
        transport = ByScheme({"mqtt": Recording()}, policy)
        return await transport.attempt(Endpoint(uri), b"{}", {}, 1.0)

    refused = f"mqtt://localhost:{listener.port}/city/alerts"
    assert asyncio.run(send(refused, POLICY)) is False
    assert asyncio.run(send("mqtt://[fd00:ec2::254]:1883/t", OutboundPolicy.open())) is False
    assert attempted == []
    assert asyncio.run(send(f"mqtt://{ALLOWED}:1883/t", POLICY)) is True
    assert attempted == [f"mqtt://{ALLOWED}:1883/t"]
    assert listener.connections == []


def test_the_guarded_client_takes_no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    client = guarded_client(POLICY)
    assert client._mounts == {}  # a proxy would connect for the broker, past the guard
    asyncio.run(client.aclose())
    assert isinstance(client, httpx.AsyncClient)


@given(st.integers(0, 2**32 - 1))
def test_an_ipv4_address_is_judged_alike_in_every_spelling(number: int) -> None:
    """IPv4-mapped and NAT64 IPv6 forms reach the same host, so they get the same verdict under any policy."""
    v4 = ipaddress.IPv4Address(number)
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) + number)
    for policy in (OutboundPolicy(), OutboundPolicy.open(), POLICY):
        verdicts = {policy.refusal(v4) is None, policy.refusal(mapped) is None, policy.refusal(nat64) is None}
        assert len(verdicts) == 1, (v4, policy.origin)
    if v4 in ipaddress.ip_network("169.254.0.0/16"):
        assert OutboundPolicy.open().refusal(v4) is not None


@given(st.sampled_from(["loopback", "private", "10.0.0.0/8", "127.0.0.0/8", "fc00::/7"]), st.integers(0, 2**16 - 1))
def test_no_allow_list_opens_a_metadata_address(allow: str, low: int) -> None:
    address = ipaddress.IPv4Address(int(ipaddress.IPv4Address("169.254.0.0")) + low)
    assert OutboundPolicy.parse(allow).refusal(address) is not None


def test_https_through_the_guard_verifies_the_host_name_not_the_dialled_address(tmp_path: Path) -> None:
    """The guard dials a checked address, and TLS still checks the certificate against the URL's host name."""
    cert, key = self_signed(tmp_path, "localhost")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    server.socket = served.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    trust = ssl.create_default_context(cafile=str(cert))

    async def get(url: str) -> int:
        async with guarded_client(OutboundPolicy.parse("loopback"), ssl_context=trust) as client:
            return (await client.get(url)).status_code

    try:
        assert asyncio.run(get(f"https://localhost:{port}/")) == 200
        with pytest.raises(httpx.ConnectError):  # the certificate names localhost, not 127.0.0.1
            asyncio.run(get(f"https://127.0.0.1:{port}/"))
    finally:
        server.shutdown()
        server.server_close()
