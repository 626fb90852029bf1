"""The temporal API (clauses 5.6.11, 5.6.16, 5.7.3, 5.7.4, 5.14.5; HTTP binding 6.18, 6.19, 6.24, 6.35), an
optional feature: a broker whose /temporal/entities answers 404/405/501 gets "not implemented" for these cases."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import expect_entity_map, map_path
from conformance.kit import Kit, case

TIMES = ("2020-01-01T10:00:00Z", "2020-01-01T11:00:00Z", "2020-01-01T12:00:00Z")


def _temporal_entity(k: Kit) -> dict[str, Any]:
    return {
        "id": k.uid("Sensor"),
        "type": k.type_name("Sensor"),
        "temperature": [{"type": "Property", "value": 20 + i, "observedAt": t} for i, t in enumerate(TIMES)],
    }


def _create(k: Kit) -> dict[str, Any]:
    body = _temporal_entity(k)
    response = k.post("/temporal/entities", body)
    k.not_implemented_if(response, "temporal")
    k.expect_status(response, 201)
    k.delete_later(f"/temporal/entities/{body['id']}")
    k.delete_later(f"/entities/{body['id']}")
    return body


def _value(instance: dict[str, Any]) -> Any:
    return instance.get("value")


def _instances(k: Kit, entity: Any, attr: str) -> list[dict[str, Any]]:
    k.expect(isinstance(entity, dict), "a temporal entity is a JSON object")
    member = entity.get(attr)
    if isinstance(member, dict):
        member = [member]
    k.expect(isinstance(member, list), f"{attr} is {member!r:.200}, expected its instances")
    return [i for i in member if isinstance(i, dict)]


@case(
    "5.6.11",
    "Create Temporal Evolution answers 201 and Retrieve gives back every instance with observedAt.",
    feature="temporal",
    also=("6.18", "6.19", "5.7.3"),
)
def create_and_retrieve(k: Kit) -> None:
    body = _create(k)
    response = k.http.get(f"/temporal/entities/{body['id']}")
    k.expect_status(response, 200)
    instances = _instances(k, k.json(response), "temperature")
    values = sorted(_value(i) for i in instances)
    k.expect(values == [20, 21, 22], f"instance values are {values}")
    k.expect(all("observedAt" in i for i in instances), "an instance lost its observedAt")


@case(
    "5.7.3",
    "timerel=after with timeAt keeps only the instances observed after that time.",
    feature="temporal",
    also=("6.19",),
)
def retrieve_time_filter(k: Kit) -> None:
    body = _create(k)
    params = {"timerel": "after", "timeAt": "2020-01-01T10:30:00Z"}
    response = k.http.get(f"/temporal/entities/{body['id']}", params=params)
    k.expect_status(response, 200)
    values = sorted(_value(i) for i in _instances(k, k.json(response), "temperature"))
    k.expect(values == [21, 22], f"values after 10:30 are {values}")


@case("5.7.3", "lastN keeps the N most recent instances.", feature="temporal", also=("6.19",))
def retrieve_last_n(k: Kit) -> None:
    body = _create(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params={"lastN": "1"})
    k.expect_status(response, 200)
    values = [i.get("value") for i in _instances(k, k.json(response), "temperature")]
    k.expect(values == [22], f"lastN=1 gave {values}")


@case(
    "5.7.3",
    "format=temporalValues gives each attribute as a values array of [value, time] pairs.",
    feature="temporal",
    also=("6.19",),
)
def retrieve_temporal_values(k: Kit) -> None:
    body = _create(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params={"format": "temporalValues"})
    k.expect_status(response, 200)
    member = k.json(response).get("temperature")
    k.expect(isinstance(member, dict) and isinstance(member.get("values"), list), f"temperature is {member!r:.200}")
    k.expect(sorted(v[0] for v in member["values"]) == [20, 21, 22], f"values are {member['values']!r}")


@case(
    "5.7.4",
    "Query Temporal Evolution by type answers the entity with its instances.",
    feature="temporal",
    also=("6.18",),
)
def query_temporal(k: Kit) -> None:
    body = _create(k)
    params = {"type": body["type"], "timerel": "before", "timeAt": "2030-01-01T00:00:00Z"}
    response = k.http.get("/temporal/entities", params=params)
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(isinstance(found, list) and [e.get("id") for e in found] == [body["id"]], f"got {found!r:.300}")
    k.expect(len(_instances(k, found[0], "temperature")) == 3, "instances missing from the query result")


@case(
    "5.7.3",
    "Retrieving the temporal evolution of an unknown entity is a ResourceNotFound error (404).",
    feature="temporal",
    also=("6.19",),
)
def retrieve_unknown_is_404(k: Kit) -> None:
    response = k.http.get(f"/temporal/entities/{k.uid()}")
    k.not_implemented_if(response, "temporal")
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.6.16",
    "Delete Temporal Evolution answers 204, and the temporal entity is then not found.",
    feature="temporal",
    also=("6.19",),
)
def delete_temporal(k: Kit) -> None:
    body = _create(k)
    k.expect_status(k.http.delete(f"/temporal/entities/{body['id']}"), 204)
    k.expect_status(k.http.get(f"/temporal/entities/{body['id']}"), 404)


def _instance_ids(k: Kit, entity_id: str) -> list[str]:
    response = k.http.get(f"/temporal/entities/{entity_id}")
    k.expect_status(response, 200)
    found = [str(i.get("instanceId")) for i in _instances(k, k.json(response), "temperature") if i.get("instanceId")]
    k.expect(len(found) == 3, f"instances carry {len(found)} instanceIds, expected 3")
    return found


@case(
    "5.6.12",
    "Add Attributes to a Temporal Evolution answers 204 and the new instances are retrievable.",
    feature="temporal",
    also=("6.20",),
)
def add_temporal_attributes(k: Kit) -> None:
    body = _create(k)
    extra = {"humidity": [{"type": "Property", "value": 60, "observedAt": TIMES[0]}]}
    k.expect_status(k.post(f"/temporal/entities/{body['id']}/attrs", extra), 204)
    response = k.http.get(f"/temporal/entities/{body['id']}")
    k.expect_status(response, 200)
    k.expect([i.get("value") for i in _instances(k, k.json(response), "humidity")] == [60], "humidity not added")


@case(
    "5.6.13",
    "Delete Attribute from a Temporal Evolution answers 204 and removes its instances.",
    feature="temporal",
    also=("6.21",),
)
def delete_temporal_attribute(k: Kit) -> None:
    body = _create(k)
    k.expect_status(k.http.delete(f"/temporal/entities/{body['id']}/attrs/temperature"), 204)
    response = k.http.get(f"/temporal/entities/{body['id']}")
    k.expect(
        response.status_code == 404 or "temperature" not in k.json(response),
        "temperature instances left after the delete",
    )


@case(
    "5.6.14",
    "Modify Attribute instance answers 204 and the instance holds the new value.",
    feature="temporal",
    also=("6.22",),
)
def modify_temporal_instance(k: Kit) -> None:
    body = _create(k)
    instance = _instance_ids(k, body["id"])[0]
    change = {"temperature": {"type": "Property", "value": 99, "observedAt": TIMES[0]}}
    k.expect_status(k.patch(f"/temporal/entities/{body['id']}/attrs/temperature/{instance}", change), 204)
    response = k.http.get(f"/temporal/entities/{body['id']}")
    values = [i.get("value") for i in _instances(k, k.json(response), "temperature")]
    k.expect(99 in values and len(values) == 3, f"values after the change are {values}")


@case(
    "5.6.15", "Delete Attribute instance answers 204 and only that instance goes.", feature="temporal", also=("6.22",)
)
def delete_temporal_instance(k: Kit) -> None:
    body = _create(k)
    instance = _instance_ids(k, body["id"])[0]
    k.expect_status(k.http.delete(f"/temporal/entities/{body['id']}/attrs/temperature/{instance}"), 204)
    response = k.http.get(f"/temporal/entities/{body['id']}")
    k.expect(len(_instances(k, k.json(response), "temperature")) == 2, "not exactly one instance deleted")


@case(
    "5.7.4",
    "POST /temporal/entityOperations/query answers the same as the GET temporal query.",
    feature="temporal",
    also=("6.24",),
)
def post_temporal_query(k: Kit) -> None:
    body = _create(k)
    query = {
        "type": "Query",
        "entities": [{"type": body["type"]}],
        "temporalQ": {"timerel": "before", "timeAt": "2030-01-01T00:00:00Z"},
    }
    response = k.post("/temporal/entityOperations/query", query)
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(isinstance(found, list) and [e.get("id") for e in found] == [body["id"]], f"got {found!r:.300}")


@case(
    "5.7.3",
    "timerel=between keeps the instances observed from timeAt up to endTimeAt.",
    feature="temporal",
    also=("6.19",),
)
def retrieve_between(k: Kit) -> None:
    body = _create(k)
    params = {"timerel": "between", "timeAt": "2020-01-01T10:30:00Z", "endTimeAt": "2020-01-01T11:30:00Z"}
    response = k.http.get(f"/temporal/entities/{body['id']}", params=params)
    k.expect_status(response, 200)
    values = sorted(_value(i) for i in _instances(k, k.json(response), "temperature"))
    k.expect(values == [21], f"values between 10:30 and 11:30 are {values}")


@case("5.7.3", "timerel without timeAt is a BadRequestData error (400).", feature="temporal", also=("6.19",))
def timerel_without_time_at_is_400(k: Kit) -> None:
    body = _create(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params={"timerel": "after"})
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.7.3",
    "format=aggregatedValues with aggrMethods gives each method as [value, start, end] triples.",
    feature="temporal",
    also=("6.19", "4.5.19"),
)
def retrieve_aggregated_values(k: Kit) -> None:
    body = _create(k)
    params = {
        "format": "aggregatedValues",
        "aggrMethods": "max,min",
        "timerel": "between",
        "timeAt": "2020-01-01T00:00:00Z",
        "endTimeAt": "2020-01-02T00:00:00Z",
    }
    response = k.http.get(f"/temporal/entities/{body['id']}", params=params)
    k.expect_status(response, 200)
    member = k.json(response).get("temperature")
    k.expect(isinstance(member, dict), f"temperature is {member!r:.200}")
    for method, expected in (("max", 22), ("min", 20)):
        rows = member.get(method)
        k.expect(
            isinstance(rows, list) and rows and isinstance(rows[0], list) and len(rows[0]) == 3,
            f"{method} is {rows!r:.200}, expected [[value, start, end]]",
        )
        k.expect(rows[0][0] == expected, f"{method} is {rows[0][0]!r}, expected {expected}")


EVER = {"timerel": "before", "timeAt": "2030-01-01T00:00:00Z"}  # a temporal restriction every instance meets


@case(
    "5.7.4",
    "A temporal query with q shows, of the attribute q names, only the instances that meet it.",
    feature="temporal",
    also=("6.18",),
)
def query_temporal_with_q(k: Kit) -> None:
    body = _create(k)
    response = k.http.get("/temporal/entities", params={"type": body["type"], "q": "temperature>20", **EVER})
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(isinstance(found, list) and [e.get("id") for e in found] == [body["id"]], f"got {found!r:.300}")
    values = sorted(_value(i) for i in _instances(k, found[0], "temperature"))
    k.expect(values == [21, 22], f"the instances shown for q=temperature>20 are {values}")


@case(
    "6.35",
    "GET /temporal/entityMaps with temporal query parameters answers 201 with the EntityMap of the matching "
    "entities, named in the NGSILD-EntityMap header.",
    feature="temporal",  # and entity maps: "not implemented" when /temporal/entityMaps is missing
    also=("5.14.5",),
)
def create_temporal_entity_map(k: Kit) -> None:
    body = _create(k)
    response = k.http.get("/temporal/entityMaps", params={"type": body["type"], **EVER})
    k.not_implemented_if(response, "entity-maps")
    k.expect_status(response, 201)
    path = map_path(k, response)
    expect_entity_map(k, k.json(response), {body["id"]})
    k.expect_status(k.http.get(path), 200)


@case(
    "6.35",
    "POST /temporal/entityMaps with a Query body answers 201 with the EntityMap of the entities that match it.",
    feature="temporal",  # and entity maps: "not implemented" when /temporal/entityMaps is missing
    also=("5.14.5",),
)
def create_temporal_entity_map_by_post(k: Kit) -> None:
    warm, cold = _create(k), _temporal_entity(k)
    cold["type"] = warm["type"]
    cold["temperature"] = [{"type": "Property", "value": 5, "observedAt": TIMES[0]}]
    k.expect_status(k.post("/temporal/entities", cold), 201)
    k.delete_later(f"/temporal/entities/{cold['id']}")
    k.delete_later(f"/entities/{cold['id']}")
    query = {"type": "Query", "entities": [{"type": warm["type"]}], "q": "temperature>20", "temporalQ": EVER}
    response = k.post("/temporal/entityMaps", query)
    k.not_implemented_if(response, "entity-maps")
    k.expect_status(response, 201)
    map_path(k, response)
    expect_entity_map(k, k.json(response), {warm["id"]})
