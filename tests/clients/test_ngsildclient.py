"""ngsildclient 0.5.2 (Orange) against a real `agora serve`, unchanged: its synchronous Client (requests) and its
AsyncClient (httpx 0.23, which follows no redirect), with their clean-up helpers, driven by drive_ngsildclient.py
in .venv-clients/ngsildclient (see conftest.py). What it sends, read from its source: bodies as
application/ld+json with the unversioned core @context inside, the spec's resource paths with their trailing '/'
(`POST /entities/`, `/entityOperations/upsert/`, `/subscriptions/`, clause 6.4.2), `limit=0&count=true` to count,
a tenant made by a batch upsert when the first query answers NonexistentTenant, and subscription q percent-encoded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.clients.conftest import Drive, drive

pytestmark = pytest.mark.e2e

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
ONE = "urn:ngsi-ld:Room:orange-1"
TWO = "urn:ngsi-ld:Room:orange-2"
B = [f"urn:ngsi-ld:Room:orange-b{i}" for i in range(3)]
SUBSCRIPTION = "urn:ngsi-ld:Subscription:orange:rooms"
CONTEXT = {"Room": "https://example.org/orange/Room", "temperature": "https://example.org/orange/t"}


@pytest.fixture(scope="module")
def orange(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    return drive("ngsildclient", tmp_path_factory.mktemp("ngsildclient"))


def without_context(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k != "@context"}


def test_connect_counts_and_makes_the_tenant(orange: Drive) -> None:
    orange.ok("connect")  # GET /entities?type=None&limit=0&count=true, NonexistentTenant, then a batch upsert
    assert sorted(orange.ok("types")) == ["Room", "__NGSILD-Tenant__"]  # the entity that made the tenant


def test_create_retrieve_and_exists(orange: Drive) -> None:
    assert orange.ok("create") is True
    error = orange.error("create again")
    assert (error["status"], error["type"]) == (409, ERRORS + "AlreadyExists")
    assert orange.ok("exists") is True and orange.ok("exists absent") is False
    entity = orange.ok("get")
    assert "@context" in entity  # what the client's exists() looks for
    assert without_context(entity) == {
        "id": ONE,
        "type": "Room",
        "temperature": {"type": "Property", "value": 21.5, "unitCode": "CEL"},
        "isIn": {"type": "Relationship", "object": "urn:ngsi-ld:Building:orange"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [13.35, 52.51]}},
    }
    assert orange.ok("get as dict") == entity
    error = orange.error("get absent")
    assert (error["status"], error["type"]) == (404, ERRORS + "ResourceNotFound")


def test_batch_create_and_its_207_for_existing_entities(orange: Drive) -> None:
    assert orange.ok("batch create") == {"op": "create", "success": B, "errors": []}
    again = orange.ok("batch create of existing entities")
    assert again["success"] == [] and sorted(e["entityId"] for e in again["errors"]) == B
    assert {(e["error"]["status"], e["error"]["type"]) for e in again["errors"]} == {(409, ERRORS + "AlreadyExists")}


def test_count_query_and_paging(orange: Drive) -> None:
    assert orange.ok("count by type") == 4
    assert orange.ok("query by type") == sorted([ONE, *B])
    assert orange.ok("query with q") == sorted([ONE, B[1], B[2]])  # 21.5, 20, 30 >= 20
    assert orange.ok("query in pages of 2") == sorted([ONE, *B])  # count first, then limit=2 with offset 0, 2
    assert orange.ok("query_head") == 2


def test_post_queries_by_id_pattern_id_and_q(orange: Drive) -> None:
    assert orange.ok("alt count by idPattern") == 3  # limit=0&count=true on POST /entityOperations/query
    assert orange.ok("alt query by idPattern") == B
    assert orange.ok("alt query by id") == [ONE]
    assert orange.ok("alt query with q") == [B[0]]  # 10 < 20


def test_a_geo_query_as_one_geoQ_url_parameter_is_an_invalid_request(orange: Drive) -> None:
    # GET /entities has no geoQ parameter (Table 6.4.3.2-1: georel, geometry, coordinates, geoproperty); an
    # unknown parameter is InvalidRequest (clause 6.3.2), record 0141
    error = orange.error("query geo")
    assert (error["status"], error["type"]) == (400, ERRORS + "InvalidRequest")
    assert "geoQ" in error["detail"]


def test_update_and_upsert_of_one_entity(orange: Drive) -> None:
    assert orange.ok("update") is True  # exists, DELETE, POST
    assert orange.ok("upsert existing") is True  # POST, 409, DELETE, POST
    assert orange.ok("upsert new") is True
    assert orange.ok("get after upserts")["temperature"]["value"] == 24.0


def test_batch_upsert_update_and_delete(orange: Drive) -> None:
    for name, op in (("batch upsert", "upsert"), ("batch upsert update", "upsert"), ("batch update", "update")):
        assert orange.ok(name) == {"op": op, "success": B, "errors": []}
    assert orange.ok("batch update noOverwrite")["errors"] == []
    for i, entity in enumerate(orange.ok("entities after batch")):
        assert entity["temperature"] == {"type": "Property", "value": 2.0}  # noOverwrite kept it from 99.0
        assert entity["humidity"]["value"] == 40 + i  # merged in by upsert with options=update
    assert orange.ok("batch delete") == {"op": "delete", "success": [B[0]], "errors": []}
    assert orange.ok("query after batch delete") == sorted([ONE, TWO, B[1], B[2]])


def test_subscriptions_create_list_retrieve(orange: Drive) -> None:
    assert orange.ok("create subscription") == SUBSCRIPTION
    # its conflict check compares the broker's representation with what it sent, @context included, so it
    # sends the same id again: 409 AlreadyExists, as clause 5.8.1 says
    error = orange.error("create the same subscription again")
    assert (error["status"], error["type"]) == (409, ERRORS + "AlreadyExists")
    assert orange.ok("list subscriptions") == [SUBSCRIPTION]
    subscription = orange.ok("get subscription")
    assert subscription["q"] == "temperature>30"  # sent as temperature%3E30, record 0140
    assert subscription["description"] == "rooms above 30 degrees"
    assert orange.ok("subscription exists") is True


def test_a_notification_for_the_percent_encoded_q_reaches_the_receiver(orange: Drive) -> None:
    assert orange.ok("update that notifies")["success"] == [B[1]]
    status = orange.ok("notification status")
    assert status["timesSent"] >= 1 and status["status"] == "ok"
    notified = orange.notified["/orange"]
    assert [e["id"] for e in notified] == [B[1]]  # b2 (2.0) and the others do not meet temperature>30
    assert notified[0]["temperature"]["value"] == 31.5


def test_subscriptions_delete_by_pattern(orange: Drive) -> None:
    assert orange.ok("delete subscriptions by pattern") is True
    assert orange.ok("list subscriptions after delete") == []


def test_the_temporal_history_of_creates_and_updates(orange: Drive) -> None:
    assert orange.ok("create meter") is True
    for hour in (11, 12):
        assert orange.ok(f"update meter at {hour}")["errors"] == []
    values = [[1.0, "2026-12-01T10:00:00Z"], [2.0, "2026-12-01T11:00:00Z"], [3.0, "2026-12-01T12:00:00Z"]]
    meter = orange.ok("temporal get")  # options=temporalValues
    assert meter["power"] == {"type": "Property", "values": values}
    instances = orange.ok("temporal get verbose")["power"]
    assert [(i["value"], i["observedAt"]) for i in instances] == [tuple(v) for v in values]
    # options=count,temporalValues&timerel=before&timeAt=<now> (record 0143)
    [queried] = orange.ok("temporal query")
    assert queried["id"] == "urn:ngsi-ld:Meter:orange-m1" and queried["power"]["values"] == values
    assert orange.ok("delete meter") is True


def test_hosted_contexts_add_list_get_and_cleanup(orange: Drive) -> None:
    orange.ok("add context")
    [hosted] = [c for c in orange.ok("list contexts") if "jsonldContexts" in c]
    assert orange.ok("get hosted context") == {"@context": CONTEXT}  # GET /jsonldContexts/<the listed URL>
    assert orange.ok("hosted context exists") is True
    orange.ok("contexts cleanup")  # DELETE of each listed context but the core one
    assert orange.ok("list contexts after cleanup") == []
    assert hosted.startswith("http://127.0.0.1:")


def test_delete_and_the_clean_up_helpers(orange: Drive) -> None:
    assert orange.ok("delete") is True and orange.ok("exists after delete") is False
    orange.ok("delete_where")  # query by type and q, then a batch delete of the ids under application/ld+json
    assert orange.ok("query after delete_where") == sorted([TWO, B[2]])
    orange.ok("drop")
    assert orange.ok("count after drop") == 0
    assert orange.ok("subscription to purge") == SUBSCRIPTION
    orange.ok("purge")  # every type listed by GET /types, dropped
    assert orange.ok("types after purge") == []
    assert orange.ok("subscriptions purge") is True
    assert orange.ok("list subscriptions after purge") == []


def test_the_async_client_over_httpx(orange: Drive) -> None:
    # httpx follows no redirect: every POST to a path with the spec's trailing '/' must be served as it is
    assert orange.ok("async create") is True
    assert orange.ok("async get")["temperature"]["value"] == 21.5
    assert orange.ok("async exists") is True
    async_rooms = [f"urn:ngsi-ld:Room:async-b{i}" for i in range(3)]
    assert orange.ok("async batch create")["success"] == async_rooms
    assert orange.ok("async count") == 4
    assert orange.ok("async query") == ["urn:ngsi-ld:Room:async-1", async_rooms[1], async_rooms[2]]
    assert orange.ok("async batch upsert")["success"] == async_rooms
    assert orange.ok("async batch update")["success"] == async_rooms
    assert orange.ok("async batch delete")["success"] == [async_rooms[0]]
    assert orange.ok("async create subscription") == SUBSCRIPTION + ":async"
    assert orange.ok("async list subscriptions") == [SUBSCRIPTION + ":async"]
    assert orange.ok("async get subscription")["entities"] == [{"type": "Room"}]
    assert orange.ok("async delete") is True
    orange.ok("async purge")
    assert orange.ok("async count after purge") == 0
    assert orange.ok("async subscriptions purge") is True
    assert orange.ok("async list subscriptions after purge") == []
