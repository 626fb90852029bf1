"""FiLiP 0.8.1 (the FIWARE Library for Python) against a real `agora serve`, unchanged: its NGSI-LD client
ContextBrokerLDClient and its clean-up helper clear_context_broker_ld, driven by drive_filip.py in
.venv-clients/filip (see conftest.py). What FiLiP sends, read from its source: a Link to the v1.6 core @context on
every request, an NGSILD-Tenant header, `idPattern=.*&count=true&limit=N` on every listing (paged by offset up to
NGSILD-Results-Count), `options=count` when it lists subscriptions, batch bodies under application/json. Its
MQTT notifications are heard with paho-mqtt (a FiLiP dependency) through a real mosquitto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.clients.conftest import Drive, drive

pytestmark = pytest.mark.e2e

ROOM = "urn:ngsi-ld:Room:filip:1"
BUILDING = "urn:ngsi-ld:Building:filip:1"
ROOMS = [f"urn:ngsi-ld:Room:filip:b{i}" for i in range(3)]
SUBSCRIPTION = "urn:ngsi-ld:Subscription:filip:rooms"
SENSOR = "urn:ngsi-ld:Sensor:filip:1"
EXAMPLE = "https://example.org/filip/"
SENSOR_TYPE = EXAMPLE + "Sensor"
FILIP_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
RESOURCE_NOT_FOUND = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


@pytest.fixture(scope="module")
def filip(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    return drive("filip", tmp_path_factory.mktemp("filip"))


def attributes(entity: dict[str, Any]) -> set[str]:
    return set(entity) - {"id", "type", "@context", "createdAt", "modifiedAt"}


def test_the_client_makes_its_tenant_and_clears_it_while_empty(filip: Drive) -> None:
    assert filip.ok("tenant") is True  # POST and DELETE of a TemporaryTenant entity under NGSILD-Tenant
    filip.ok("clear an empty tenant")  # a listing by idPattern=.* alone, then GET /subscriptions?options=count


def test_create_answers_the_location_and_a_second_create_409_so_the_client_appends(filip: Drive) -> None:
    assert filip.ok("post entity") == f"/ngsi-ld/v1/entities/{ROOM}"
    filip.ok("post entity again: 409 AlreadyExists then append")
    entity = filip.ok("get entity")
    assert entity["temperature"] == {"type": "Property", "value": 22.0, "unitCode": "CEL"}  # the appended value


def test_retrieve_in_the_representations_the_client_parses(filip: Drive) -> None:
    entity = filip.ok("get entity")
    assert entity["@context"] == FILIP_CONTEXT  # the @context the client named in its Link header
    assert entity["isIn"] == {"type": "Relationship", "object": BUILDING}
    assert entity["location"]["value"] == {"type": "Point", "coordinates": [13.35, 52.51]}
    simplified = filip.ok("get entity keyValues")
    assert simplified["temperature"] == 22.0 and simplified["isIn"] == BUILDING
    assert attributes(filip.ok("get entity attrs")) == {"temperature"}
    with_sys_attrs = filip.ok("get entity sysAttrs")
    assert "createdAt" in with_sys_attrs and "modifiedAt" in with_sys_attrs["temperature"]


def test_an_absent_entity_is_resource_not_found_which_the_client_reads_as_an_invalid_relationship(
    filip: Drive,
) -> None:
    error = filip.error("get absent entity")
    assert error["status"] == 404 and error["body"]["type"] == RESOURCE_NOT_FOUND
    assert filip.ok("relationship to an absent entity") is False
    assert filip.ok("relationship to an existing entity") is True


def test_an_entity_with_its_own_context_is_shown_expanded_to_a_client_without_it(filip: Drive) -> None:
    # sent as application/ld+json with an inline @context and no Link; read back with the client's core Link
    assert filip.ok("post entity with @context") == f"/ngsi-ld/v1/entities/{SENSOR}"
    entity = filip.ok("get it with the core @context")
    assert entity["type"] == SENSOR_TYPE
    assert entity[f"{EXAMPLE}reading"] == {"type": "Property", "value": 7}
    assert filip.ok("get it by type") == entity  # GET /entities/{id}?type= (Table 6.5.3.1-1)
    filip.ok("batch upsert with @context")  # the same under application/ld+json
    assert filip.ok("reading after batch upsert") == {"type": "Property", "value": 8}
    filip.ok("delete entity by id and type")  # DELETE /entities/{id}?type= (Table 6.5.3.2-1)


def test_a_key_values_entity_is_posted_normalized(filip: Drive) -> None:
    filip.ok("post keyValues entity")
    assert filip.ok("get keyValues entity")["battery"] == {"type": "Property", "value": 0.9}
    filip.ok("delete keyValues entity")


def test_queries_by_type_pattern_q_attrs_and_geo(filip: Drive) -> None:
    assert filip.ok("list by type") == sorted([ROOM, *ROOMS])
    assert filip.ok("list by idPattern and type") == ROOMS
    assert filip.ok("list with q") == sorted([ROOM, ROOMS[1], ROOMS[2]])  # 22, 20, 30 >= 20
    projected = filip.ok("list with attrs")
    assert [attributes(e) for e in projected] == [{"isIn"}] * 4
    assert filip.ok("list near") == sorted([ROOM, *ROOMS])


def test_listings_by_id_pattern_or_id_alone_as_the_client_always_sends_them(filip: Drive) -> None:
    # every listing carries idPattern=.*; without a type it is an id-only query, which clause 6.4.3.2 allows
    assert filip.ok("list all") == sorted([BUILDING, ROOM, *ROOMS])
    assert filip.ok("list by id") == [ROOM]
    [simplified] = filip.ok("list keyValues")
    assert simplified["id"] == ROOM and simplified["temperature"] == 22.0


def test_paging_by_limit_offset_and_results_count(filip: Drive) -> None:
    assert filip.ok("list with limit") == 2
    assert filip.ok("list in pages of 2") == sorted([ROOM, *ROOMS])  # offset 0, 2 up to NGSILD-Results-Count


def test_attribute_updates(filip: Drive) -> None:
    for name in ("update attribute", "append attributes", "append noOverwrite", "replace existing attributes"):
        filip.ok(name)
    entity = filip.ok("entity after updates")
    assert entity["temperature"]["value"] == 25.0
    assert entity["humidity"]["value"] == 45  # appended 40, kept against noOverwrite 99, then replaced by 45
    filip.ok("delete attribute")
    assert "humidity" not in filip.ok("entity after delete attribute")


def test_batch_create_upsert_update_delete(filip: Drive) -> None:
    filip.ok("batch create")
    for name in ("batch upsert", "batch update", "override entities"):
        filip.ok(name)
    b0, b1, b2 = filip.ok("entities after batch")
    assert b0["temperature"]["value"] == 5.0 and "humidity" not in b0  # replaced by override_entities
    assert (b1["temperature"]["value"], b1["humidity"]["value"]) == (21.0, 50)
    assert (b2["temperature"]["value"], b2["humidity"]["value"]) == (31.0, 50)
    filip.ok("batch delete")
    assert filip.ok("list after batch delete") == sorted([ROOM, ROOMS[1], ROOMS[2]])


def test_a_batch_create_of_existing_entities_only_is_207_with_errors_only(filip: Drive) -> None:
    # FiLiP reads the 207 BatchOperationResult: every entity in errors (entityId, error.title, error.status)
    error = filip.error("batch create of existing entities only")
    assert error == {"exception": "RuntimeError", "message": "Batch operation resulted in errors only, see logs"}


def test_subscriptions_create_list_retrieve_update(filip: Drive) -> None:
    assert filip.ok("post subscription") == SUBSCRIPTION
    # the client lists subscriptions first and finds its own, as it wrote it: no second one is made
    assert filip.ok("post the same subscription again") == SUBSCRIPTION
    assert filip.ok("subscription list") == [SUBSCRIPTION]
    subscription = filip.ok("get subscription")
    assert subscription["q"] == "temperature>30"
    assert subscription["entities"] == [{"type": "Room"}]
    assert subscription["notification"]["attributes"] == ["temperature"]
    filip.ok("update subscription")
    assert filip.ok("subscription after update") == "rooms above 30 degrees"


def test_a_notification_reaches_the_receiver_and_the_subscription_shows_it(filip: Drive) -> None:
    filip.ok("update that notifies")
    status = filip.ok("notification status")
    assert status["timesSent"] >= 1 and status["status"] == "ok" and "lastSuccess" in status
    notified = filip.notified["/filip"]
    assert {"id": ROOM, "type": "Room", "temperature": {"type": "Property", "value": 31.5, "unitCode": "CEL"}} in [
        {k: v for k, v in e.items() if k != "@context"} for e in notified
    ]


def test_a_notification_over_mqtt_reaches_the_client_library_listener(filip: Drive) -> None:
    # an mqtt:// endpoint with notifierInfo MQTT-Version mqtt3.1.1: the payload carries metadata and body (clause 7)
    message = filip.ok("mqtt notification")
    assert message["metadata"]["Content-Type"] == "application/json"
    notification = message["body"]
    assert notification["type"] == "Notification"
    assert notification["subscriptionId"] == "urn:ngsi-ld:Subscription:filip:mqtt"
    [entity] = notification["data"]
    assert (entity["id"], entity["temperature"]["value"]) == (ROOM, 29.0)


def test_delete_subscription_and_entity(filip: Drive) -> None:
    filip.ok("delete subscription")
    assert filip.ok("subscription list after delete") == []
    filip.ok("delete entity")
    assert filip.error("get deleted entity")["status"] == 404


def test_the_clean_up_helper_empties_the_tenant(filip: Drive) -> None:
    assert filip.ok("post subscription to clear") == SUBSCRIPTION
    filip.ok("clear context broker")  # lists by idPattern=.*, batch-deletes the ids, deletes every subscription
    assert filip.ok("list after clear") == []
    assert filip.ok("subscription list after clear") == []
