"""Security headers, request rate limits per client and the query complexity bounds (records 0206-0208), and the
security schemes of the served OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from broker.auth.identity import Identity
from broker.http.app import create_app
from broker.http.protect import TokenBuckets, client_key
from broker.settings import Settings

ENTITIES = "/ngsi-ld/v1/entities?type=T"


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get(ENTITIES), client.get("/ngsi-ld/v1/entities/urn:x:missing"), client.get("/nowhere")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP (RFC 6797 clause 7.2)


def test_the_open_loopback_mode_has_no_rate_limit_and_other_modes_do() -> None:
    assert Settings().requests_per_second == 0
    assert Settings(host="0.0.0.0", insecure=True).requests_per_second == 100
    assert Settings(auth="required", rate_limit=0).requests_per_second == 0


@pytest.fixture
def limited() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory://", rate_limit=0.5, rate_burst=3))) as client:
        yield client


def test_a_client_over_its_budget_gets_429_with_retry_after(limited: TestClient) -> None:
    statuses = [limited.get(ENTITIES).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = limited.get(ENTITIES)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["status"] == 429 and "rate limit" in refused.json()["detail"]
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


def test_token_buckets_refill_at_their_rate_and_keep_clients_apart() -> None:
    buckets = TokenBuckets(rate=2.0, burst=2)
    assert [buckets.take("a", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a", now=0.0) == pytest.approx(0.5)
    assert buckets.take("b", now=0.0) == 0.0
    assert buckets.take("a", now=0.5) == 0.0  # one token back after half a second
    small = TokenBuckets(rate=1.0, burst=1, max_clients=2)
    for name in ("a", "b", "c"):
        small.take(name, now=0.0)
    assert len(small._buckets) == 2


@pytest.fixture
def bounded() -> Iterator[TestClient]:
    settings = Settings(store="memory://", max_q_depth=2, max_q_conditions=3, max_join_level=2)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("q=((a==1))|(((b==2)))", "nesting deeper than 2"),
        ("q=a==1;b==2;c==3;d==4", "more than the 3 allowed"),
    ],
)
def test_queries_beyond_the_configured_bounds_are_too_complex(bounded: TestClient, query: str, words: str) -> None:
    response = bounded.get(f"{ENTITIES}&{query}")
    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/TooComplexQuery")
    assert words in response.json()["detail"]
    assert bounded.get(f"{ENTITIES}&q=a==1;b==2;c==3").status_code == 200


def test_a_join_level_beyond_the_bound_is_too_complex(bounded: TestClient) -> None:
    eid = "urn:ngsi-ld:T:1"
    assert bounded.post("/ngsi-ld/v1/entities", json={"id": eid, "type": "T"}).status_code == 201
    deep = bounded.get(f"/ngsi-ld/v1/entities/{eid}?join=inline&joinLevel=3")
    assert deep.status_code == 403 and "joinLevel=3" in deep.json()["detail"]
    assert bounded.get(f"/ngsi-ld/v1/entities/{eid}?join=inline&joinLevel=2").status_code == 200
    assert bounded.get(f"/ngsi-ld/v1/entities/{eid}?join=inline&joinLevel=0").status_code == 400


def test_the_openapi_document_declares_the_security_schemes(client: TestClient) -> None:
    doc = client.get("/ngsi-ld/v1/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerJwt"] == {**schemes["bearerJwt"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert doc["security"] == [{"bearerJwt": []}, {"apiKey": []}, {}]


def test_each_token_subject_and_key_has_its_own_budget() -> None:
    alice = Identity("alice", client="portal", issuer="https://id.example", method="token")
    bob = Identity("bob", client="portal", issuer="https://id.example", method="token")
    key = Identity("apikey:0123456789ab", client="gateway", method="key")
    peer = {"client": ("10.1.2.3", 5000)}
    assert len({client_key(alice, peer), client_key(bob, peer), client_key(key, peer)}) == 3
    assert client_key(None, peer) == client_key(Identity("anonymous", method="anonymous"), peer) == "addr|10.1.2.3"
