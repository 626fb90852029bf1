"""Temporal queries take options=count for count=true (record 0143), as ngsildclient's temporal query sends it;
a temporal retrieve, which has no count, does not."""

from __future__ import annotations

from starlette.testclient import TestClient

T = "/ngsi-ld/v1/temporal/entities"
WINDOW = {"type": "Meter", "timerel": "before", "timeAt": "2030-01-01T00:00:00Z"}


def _meters(client: TestClient) -> None:
    for i in range(3):
        entity = {
            "id": f"urn:ngsi-ld:Meter:{i}",
            "type": "Meter",
            "power": {"type": "Property", "value": i, "observedAt": "2026-01-01T00:00:00Z"},
        }
        assert client.post("/ngsi-ld/v1/entities", json=entity).status_code == 201


def test_options_count_on_a_temporal_query_answers_the_results_count(client: TestClient) -> None:
    _meters(client)
    answer = client.get(T, params={**WINDOW, "options": "count,temporalValues", "limit": 2})
    assert answer.status_code == 200, answer.text
    assert answer.headers["NGSILD-Results-Count"] == "3"
    assert len(answer.json()) == 2 and "values" in answer.json()[0]["power"]  # temporalValues still applies
    assert "NGSILD-Results-Count" not in client.get(T, params={**WINDOW, "options": "temporalValues"}).headers


def test_options_count_on_a_post_temporal_query(client: TestClient) -> None:
    _meters(client)
    body = {
        "type": "Query",
        "entities": [{"type": "Meter"}],
        "temporalQ": {"timerel": "before", "timeAt": "2030-01-01T00:00:00Z"},
    }
    answer = client.post("/ngsi-ld/v1/temporal/entityOperations/query", params={"options": "count"}, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["NGSILD-Results-Count"] == "3"


def test_options_count_on_a_temporal_retrieve_is_an_invalid_request(client: TestClient) -> None:
    _meters(client)
    answer = client.get(f"{T}/urn:ngsi-ld:Meter:0", params={"options": "count"})
    assert answer.status_code == 400
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest"
