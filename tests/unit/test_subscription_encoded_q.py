"""A subscription q sent percent-encoded, as ngsildclient's SubscriptionBuilder writes it, is read decoded
(record 0140); a q written plainly is never changed."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from broker.core.subscriptions import url_encoded_q

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
LD = {"Content-Type": "application/ld+json"}


def _subscription(sub_id: str, q: str) -> dict[str, Any]:
    return {
        "id": sub_id,
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "q": q,
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        "@context": CORE,
    }


def test_a_wholly_encoded_q_is_decoded_once() -> None:
    assert url_encoded_q("temperature%3E30") == "temperature>30"
    assert url_encoded_q("a%3D%3D%22x%2520y%22%3Bb%3C2") == 'a=="x%20y";b<2'


def test_a_plain_q_is_kept_as_written() -> None:
    for q in ('name=="100%3E"', "temperature>30", "temperature", "a%3E1;b==2", "ref==urn:x:a%20b"):
        assert url_encoded_q(q) == q


def test_an_encoded_subscription_q_is_stored_and_shown_decoded(client: TestClient) -> None:
    created = client.post("/ngsi-ld/v1/subscriptions", json=_subscription("urn:s:1", "temperature%3E30"), headers=LD)
    assert created.status_code == 201, created.text
    assert client.get("/ngsi-ld/v1/subscriptions/urn:s:1").json()["q"] == "temperature>30"
    patched = client.patch(
        "/ngsi-ld/v1/subscriptions/urn:s:1", json={"q": "humidity%3C%3D40", "@context": CORE}, headers=LD
    )
    assert patched.status_code == 204, patched.text
    assert client.get("/ngsi-ld/v1/subscriptions/urn:s:1").json()["q"] == "humidity<=40"


def test_a_plain_subscription_q_with_a_percent_in_a_string_is_kept(client: TestClient) -> None:
    created = client.post("/ngsi-ld/v1/subscriptions", json=_subscription("urn:s:2", 'label=="100%3E"'), headers=LD)
    assert created.status_code == 201, created.text
    assert client.get("/ngsi-ld/v1/subscriptions/urn:s:2").json()["q"] == 'label=="100%3E"'
