"""Query Entities (clause 5.7.2; HTTP binding 6.4.3.2 and 6.23) with the query language (4.9), geo-queries (4.10),
type selection (4.17), scopes (4.19), projection (4.21), ordering (4.23) and pagination (5.5.9)."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import ids, point, prop, rel, vehicle
from conformance.kit import Kit, case


def _fleet(k: Kit, entity_type: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Three vehicles of a fresh type: speeds 10, 50, 90; the first two in Lyon, the third in Paris."""
    entity_type = entity_type or k.type_name("Fleet")
    fleet = [
        vehicle(k, entity_type, speed=prop(10), location=point(4.8357, 45.764), brand=prop("Renault")),
        vehicle(k, entity_type, speed=prop(50), location=point(4.8400, 45.760), brand=prop("Iveco")),
        vehicle(
            k,
            entity_type,
            speed=prop(90),
            location=point(2.3522, 48.8566),
            brand=prop("Renault"),
            isParked=rel("urn:ngsi-ld:OffStreetParking:conformance-north"),
        ),
    ]
    for entity in fleet:
        k.entity(entity)
    return entity_type, fleet


def _expect_ids(k: Kit, found: list[dict[str, Any]], expected: list[dict[str, Any]], what: str) -> None:
    k.expect(ids(found) == ids(expected), f"{what}: got {sorted(ids(found))}, expected {sorted(ids(expected))}")


@case("5.7.2", "Query by type answers 200 with exactly the entities of that type.", also=("6.4", "4.17"))
def query_by_type(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    _expect_ids(k, k.query({"type": entity_type}), fleet, "type=")


@case("4.17", "A type selection A,B selects the entities of either type.", also=("5.7.2",))
def query_type_selection_or(k: Kit) -> None:
    first, second = vehicle(k), vehicle(k)
    k.entity(first)
    k.entity(second)
    _expect_ids(k, k.query({"type": f"{first['type']},{second['type']}"}), [first, second], "type=A,B")


@case("5.7.2", "Query by id list answers only the listed entities.", also=("6.4",))
def query_by_id(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    found = k.query({"type": entity_type, "id": f"{fleet[0]['id']},{fleet[2]['id']}"})
    _expect_ids(k, found, [fleet[0], fleet[2]], "id=")


@case("5.7.2", "idPattern selects the entities whose id matches the regular expression.", also=("6.4",))
def query_by_id_pattern(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    pattern = fleet[1]["id"].replace(".", "\\.") + "$"
    _expect_ids(k, k.query({"type": entity_type, "idPattern": pattern}), [fleet[1]], "idPattern=")


@case("4.9", "q with a numeric comparison (speed>40) selects the matching entities.", also=("5.7.2",))
def query_q_numeric(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    _expect_ids(k, k.query({"type": entity_type, "q": "speed>40"}), fleet[1:], "q=speed>40")


@case("4.9", "q with a range (speed==40..95) and AND (;) combine as the grammar says.", also=("5.7.2",))
def query_q_range_and(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    found = k.query({"type": entity_type, "q": 'speed==40..95;brand=="Renault"'})
    _expect_ids(k, found, [fleet[2]], "q=speed==40..95;brand==Renault")


@case("4.9", "q with OR (|) selects entities matching either term.", also=("5.7.2",))
def query_q_or(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    _expect_ids(k, k.query({"type": entity_type, "q": "speed<20|speed>80"}), [fleet[0], fleet[2]], "q=...|...")


@case("4.9", "q with a string equality matches Property values.", also=("5.7.2",))
def query_q_string(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    _expect_ids(k, k.query({"type": entity_type, "q": 'brand=="Iveco"'}), [fleet[1]], 'q=brand=="Iveco"')


@case("4.9", "q on a Relationship compares its object URI.", also=("5.7.2",))
def query_q_relationship(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    found = k.query({"type": entity_type, "q": 'isParked=="urn:ngsi-ld:OffStreetParking:conformance-north"'})
    _expect_ids(k, found, [fleet[2]], "q=isParked==<uri>")


@case("4.9", "q with a bare attribute name selects the entities that have the attribute.", also=("5.7.2",))
def query_q_existence(k: Kit) -> None:
    entity_type = k.type_name("Fleet")
    with_fuel = vehicle(k, entity_type, fuel=prop(3))
    without = vehicle(k, entity_type)
    k.entity(with_fuel)
    k.entity(without)
    _expect_ids(k, k.query({"type": entity_type, "q": "fuel"}), [with_fuel], "q=fuel")


@case("4.9", "An invalid q expression is a BadRequestData or InvalidRequest error (400).", also=("5.7.2", "6.3.2"))
def query_q_invalid_is_400(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "q": "speed>>>"})
    problem = k.expect_problem(response, 400)
    k.expect(problem["type"].rsplit("/", 1)[-1] in ("BadRequestData", "InvalidRequest"), f"type {problem['type']}")


@case(
    "4.10", "georel=near;maxDistance selects the entities within that distance (metres) of the point.", also=("5.7.2",)
)
def query_geo_near(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    params = {
        "type": entity_type,
        "georel": "near;maxDistance==2000",
        "geometry": "Point",
        "coordinates": "[4.8357,45.764]",
    }
    _expect_ids(k, k.query(params), fleet[:2], "near;maxDistance==2000")


@case("4.10", "georel=within a Polygon selects the entities inside it.", also=("5.7.2",))
def query_geo_within(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    polygon = "[[[2.0,48.5],[2.8,48.5],[2.8,49.2],[2.0,49.2],[2.0,48.5]]]"
    params = {"type": entity_type, "georel": "within", "geometry": "Polygon", "coordinates": polygon}
    _expect_ids(k, k.query(params), [fleet[2]], "within Paris polygon")


@case("4.10", "A geo-query missing its geometry or coordinates is a BadRequestData error (400).", also=("5.7.2",))
def query_geo_incomplete_is_400(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "georel": "near;maxDistance==10"})
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.7.2",
    "A query with none of type, attrs, q or geo-query (and not local) is a BadRequestData error (400).",
    also=("6.4",),
)
def query_without_selector_is_400(k: Kit) -> None:
    k.expect_problem(k.http.get("/entities"), 400, "BadRequestData")


@case(
    "5.7.2", "attrs selects the entities having one of the attributes and returns only those attributes.", also=("6.4",)
)
def query_attrs(k: Kit) -> None:
    entity_type = k.type_name("Fleet")
    with_fuel, without = vehicle(k, entity_type, fuel=prop(3)), vehicle(k, entity_type)
    k.entity(with_fuel)
    k.entity(without)
    found = k.query({"type": entity_type, "attrs": "fuel"})
    _expect_ids(k, found, [with_fuel], "attrs=fuel")
    k.expect(found and "speed" not in found[0], "attrs=fuel returned other attributes")


@case("4.21", "pick and omit project every entity of a query result.", also=("5.7.2",))
def query_pick_omit(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    picked = k.query({"type": entity_type, "pick": "id,speed"})
    k.expect(all(set(e) - {"@context"} == {"id", "speed"} for e in picked), f"pick=id,speed gave {picked[:1]}")
    omitted = k.query({"type": entity_type, "omit": "speed,location"})
    k.expect(
        all("speed" not in e and "location" not in e and "brand" in e for e in omitted),
        f"omit=speed,location gave {omitted[:1]}",
    )


@case(
    "5.5.9",
    "limit and offset page the result, and count=true gives the total in NGSILD-Results-Count.",
    also=("5.7.2", "6.4"),
)
def query_limit_offset_count(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    response = k.http.get("/entities", params={"type": entity_type, "limit": "2", "count": "true"})
    k.expect_status(response, 200)
    first = k.json(response)
    k.expect(len(first) == 2, f"limit=2 gave {len(first)} entities")
    k.expect(
        response.headers.get("NGSILD-Results-Count") == "3",
        f"NGSILD-Results-Count is {response.headers.get('NGSILD-Results-Count')!r}, expected 3",
    )
    rest = k.query({"type": entity_type, "limit": "2", "offset": "2"})
    k.expect(len(rest) == 1, f"offset=2 gave {len(rest)} entities")
    k.expect(ids(first) | ids(rest) == ids(fleet), "the pages do not add up to the whole result")


@case("5.5.9", "A query with limit=0 and count=true answers an empty array and the count.", also=("5.7.2",))
def query_count_only(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    response = k.http.get("/entities", params={"type": entity_type, "limit": "0", "count": "true"})
    k.expect_status(response, 200)
    k.expect(k.json(response) == [], "limit=0 returned entities")
    k.expect(response.headers.get("NGSILD-Results-Count") == "3", "NGSILD-Results-Count is not 3")


@case(
    "5.5.9",
    "A page that is not the last one announces the next page in a Link header (rel=next).",
    also=("5.7.2", "6.4"),
)
def query_next_link(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    response = k.http.get("/entities", params={"type": entity_type, "limit": "1"})
    k.expect_status(response, 200)
    links = ",".join(response.headers.get_list("link"))
    k.expect('rel="next"' in links or "rel=next" in links, f"no rel=next Link header (Link: {links!r})")


def _ordered_speeds(k: Kit, entity_type: str, order_by: str) -> list[Any]:
    """The speeds of a local query ordered by `order_by`; "not implemented" when the broker refuses orderBy even
    with local=true (clause 5.7.2.4 refuses it without: ordering is never applied to distributed operations)."""
    response = k.http.get("/entities", params={"type": entity_type, "orderBy": order_by, "local": "true"})
    if response.status_code == 400:
        k.missing("orderBy", "orderBy with local=true answered 400 (entity ordering is recent, clause 4.23)")
    k.expect_status(response, 200)
    return [e.get("speed", {}).get("value") for e in k.json(response)]


@case("4.23", "orderBy sorts the result by an attribute, ascending or descending.", also=("5.7.2",))
def query_order_by(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    speeds = _ordered_speeds(k, entity_type, "speed;desc")
    k.expect(speeds == [90, 50, 10], f"orderBy=speed;desc&local=true gave speeds {speeds}")
    speeds = _ordered_speeds(k, entity_type, "brand,speed;desc")
    k.expect(speeds == [50, 90, 10], f"orderBy=brand,speed;desc&local=true gave speeds {speeds}")


@case(
    "5.7.2",
    "orderBy without local=true sorts a query no registration applies to: its execution is limited to the local scope.",
    also=("4.23", "6.4", "5.5.13"),
)
def query_order_by_without_local(k: Kit) -> None:
    """5.7.2.4 refuses orderBy only "if ... the execution of the operation is not limited to the local scope"; a
    fresh type no Context Source Registration names is answered from the local store alone."""
    entity_type, _ = _fleet(k)
    _ordered_speeds(k, entity_type, "speed")
    response = k.http.get("/entities", params={"type": entity_type, "orderBy": "speed;desc"})
    k.expect_status(response, 200)
    speeds = [e.get("speed", {}).get("value") for e in k.json(response)]
    k.expect(speeds == [90, 50, 10], f"orderBy=speed;desc without local=true gave speeds {speeds}")


@case("5.7.2", "POST /entityOperations/query with a Query body answers the same entities as GET.", also=("6.23",))
def post_query(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    query = {"type": "Query", "entities": [{"type": entity_type}], "q": "speed>40"}
    response = k.post("/entityOperations/query", query)
    k.expect_status(response, 200)
    _expect_ids(k, k.json(response), fleet[1:], "POST query")


@case("4.19", "scopeQ selects entities by their scope (/A/# is the subtree of /A).", also=("5.7.2",))
def query_scope(k: Kit) -> None:
    entity_type = k.type_name("Scoped")
    north = vehicle(k, entity_type, scope="/Lyon/North")
    south = vehicle(k, entity_type, scope="/Marseille")
    k.entity(north)
    k.entity(south)
    _expect_ids(k, k.query({"type": entity_type, "scopeQ": "/Lyon/#"}), [north], "scopeQ=/Lyon/#")


@case("5.7.2", "A query with options=keyValues returns every entity simplified.", also=("4.5.4",))
def query_key_values(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    found = k.query({"type": entity_type, "options": "keyValues"})
    speeds: list[Any] = [e.get("speed") for e in found]
    k.expect(sorted(speeds) == [10, 50, 90], f"keyValues speeds {speeds}")


@case("5.7.2", "local=true allows a query without type, attrs, q or geo-query.", also=("6.4", "5.5.13"))
def query_local_without_selector(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    found = k.query({"local": "true", "id": body["id"]})
    _expect_ids(k, found, [body], "local=true&id=")


@case("4.5.5", "datasetId= selects the attribute instances with those datasetIds.", also=("5.7.1",))
def retrieve_dataset_id(k: Kit) -> None:
    dataset = "urn:ngsi-ld:Dataset:gps"
    body = vehicle(k, speed=[prop(80), prop(79, datasetId=dataset)])
    k.entity(body)
    speed = k.get_entity(body["id"], datasetId=dataset).get("speed")
    k.expect(isinstance(speed, dict) and speed.get("value") == 79, f"datasetId={dataset} gave speed {speed!r}")


@case(
    "5.7.1",
    "Retrieve Entity with a type that does not match the entity is a ResourceNotFound error (404).",
    also=("6.5", "4.17"),
)
def retrieve_with_other_type_is_404(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get(f"/entities/{body['id']}", params={"type": k.type_name("Other")})
    k.expect_problem(response, 404, "ResourceNotFound")


@case("4.9", "q on a sub-attribute path (attr.subattr) compares the sub-attribute's value.", also=("5.7.2",))
def query_q_sub_attribute(k: Kit) -> None:
    entity_type = k.type_name("Fleet")
    gps = vehicle(k, entity_type, speed=prop(10, accuracy=prop(0.5)))
    radar = vehicle(k, entity_type, speed=prop(10, accuracy=prop(3.0)))
    k.entity(gps)
    k.entity(radar)
    _expect_ids(k, k.query({"type": entity_type, "q": "speed.accuracy<1"}), [gps], "q=speed.accuracy<1")


@case("5.5.9", "The last page announces the previous page (rel=prev) and no next page.", also=("5.7.2", "6.4"))
def query_last_page_links(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    response = k.http.get("/entities", params={"type": entity_type, "limit": "1", "offset": "2"})
    k.expect_status(response, 200)
    k.expect(len(k.json(response)) == 1, "the last page of three entities, one per page, is not one entity")
    links = ",".join(response.headers.get_list("link"))
    k.expect('rel="prev"' in links or "rel=prev" in links, f"no rel=prev Link header (Link: {links!r})")
    k.expect('rel="next"' not in links and "rel=next" not in links, f"rel=next on the last page (Link: {links!r})")


@case("4.10", "geoproperty selects which GeoProperty a geo-query tests.", also=("5.7.2",))
def query_geoproperty(k: Kit) -> None:
    entity_type = k.type_name("Fleet")
    home = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.3522, 48.8566]}}
    away = vehicle(k, entity_type, depot=home)
    k.entity(away)
    k.entity(vehicle(k, entity_type))
    params = {
        "type": entity_type,
        "georel": "near;maxDistance==1000",
        "geometry": "Point",
        "coordinates": "[2.3522,48.8566]",
        "geoproperty": "depot",
    }
    _expect_ids(k, k.query(params), [away], "geoproperty=depot")


@case("4.9", "q with != and with the pattern operator ~= select as the grammar says.", also=("5.7.2",))
def query_q_not_equal_and_pattern(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    _expect_ids(k, k.query({"type": entity_type, "q": 'brand!="Renault"'}), [fleet[1]], 'q=brand!="Renault"')
    _expect_ids(k, k.query({"type": entity_type, "q": 'brand~="^Ren"'}), [fleet[0], fleet[2]], 'q=brand~="^Ren"')


@case(
    "4.19",
    "An entity's scope is kept, and scopeQ matches exact scopes, one-level (+) and any-scope (/#).",
    also=("5.7.2", "5.7.1"),
)
def query_scope_forms(k: Kit) -> None:
    entity_type = k.type_name("Scoped")
    north = vehicle(k, entity_type, scope=["/Lyon/North"])
    south = vehicle(k, entity_type, scope="/Lyon/South/Docks")
    unscoped = vehicle(k, entity_type)
    for body in (north, south, unscoped):
        k.entity(body)
    kept = k.get_entity(north["id"]).get("scope")
    k.expect(kept in ("/Lyon/North", ["/Lyon/North"]), f"scope is {kept!r}")
    _expect_ids(k, k.query({"type": entity_type, "scopeQ": "/Lyon/North"}), [north], "scopeQ=/Lyon/North")
    _expect_ids(k, k.query({"type": entity_type, "scopeQ": "/Lyon/+"}), [north], "scopeQ=/Lyon/+")
    _expect_ids(k, k.query({"type": entity_type, "scopeQ": "/#"}), [north, south], "scopeQ=/#")


@case("4.17", "A type selection (A;B) selects only the entities having both types.", also=("5.7.2",))
def query_type_selection_and(k: Kit) -> None:
    first, second = k.type_name("A"), k.type_name("B")
    both = {**vehicle(k, first), "type": [first, second]}
    only_first = vehicle(k, first)
    k.entity(both)
    k.entity(only_first)
    _expect_ids(k, k.query({"type": f"({first};{second})"}), [both], "type=(A;B)")
    _expect_ids(k, k.query({"type": first}), [both, only_first], "type=A")


@case(
    "5.7.2",
    "POST /entityOperations/query honours pick in the Query body and the limit and count parameters.",
    also=("6.23", "4.21"),
)
def post_query_pick_and_count(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    query = {"type": "Query", "entities": [{"type": entity_type}], "pick": ["id", "speed"]}  # String[] (5.2.23)
    response = k.post("/entityOperations/query", query, params={"limit": "2", "count": "true"})
    k.expect_status(response, 200)
    found = k.json(response)
    k.expect(len(found) == 2 and all(set(e) - {"@context"} == {"id", "speed"} for e in found), f"got {found!r:.300}")
    k.expect(response.headers.get("NGSILD-Results-Count") == "3", "NGSILD-Results-Count is not 3")


@case("6.23", "A POST query whose body is not a Query (type member) is a BadRequestData error (400).", also=("5.7.2",))
def post_query_without_query_type_is_400(k: Kit) -> None:
    response = k.post("/entityOperations/query", {"entities": [{"type": k.type_name()}], "type": "NotAQuery"})
    k.expect_problem(response, 400, "BadRequestData")


# -- selection without a type (5.7.2.3, 5.7.2.4), parameters the operation does not take (6.3.2) -------------------
@case(
    "5.7.2",
    "A query by id alone answers 200 when its execution is local (no registration applies): no further restriction.",
    also=("6.4", "5.5.13"),
)
def query_by_id_alone(k: Kit) -> None:
    """5.7.2.3: "If the execution of the operation is limited to the local scope ..., no further restrictions have to
    be provided"; a fresh id no registration names is answered locally."""
    _, fleet = _fleet(k)
    _expect_ids(k, k.query({"id": f"{fleet[0]['id']},{fleet[1]['id']}"}), fleet[:2], "id= alone")


@case("5.7.2", "A query by idPattern alone answers 200 with the entities whose id matches.", also=("6.4", "5.5.13"))
def query_by_id_pattern_alone(k: Kit) -> None:
    _, fleet = _fleet(k)
    _expect_ids(k, k.query({"idPattern": "^" + fleet[2]["id"].replace(".", "\\.") + "$"}), [fleet[2]], "idPattern=")


@case(
    "5.7.2",
    "POST /entityOperations/query with an EntitySelector holding only an id answers that entity.",
    also=("6.23", "5.2.33"),
)
def post_query_by_id_alone(k: Kit) -> None:
    _, fleet = _fleet(k)
    response = k.post("/entityOperations/query", {"type": "Query", "entities": [{"id": fleet[1]["id"]}]})
    k.expect_status(response, 200)
    _expect_ids(k, k.json(response), [fleet[1]], "POST query by id")


@case("5.7.2", "An id list holding a value that is not a URI is a BadRequestData error (400).", also=("6.4",))
def query_invalid_id_is_400(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "id": "not a uri"})
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "6.3.2",
    "A query parameter Query Entities does not take is an InvalidRequest error (400).",
    also=("5.7.2", "6.4"),
)
def query_unknown_parameter_is_invalid_request(k: Kit) -> None:
    """Clause 6.3.2: "If an HTTP request for an operation contains parameters that are incompatible with the
    operation ... an HTTP error response of type InvalidRequest should be returned"."""
    response = k.http.get("/entities", params={"type": k.type_name(), "frobnicate": "1"})
    k.expect_problem(response, 400, "InvalidRequest")


@case("6.3.2", "An options value Query Entities does not support is an InvalidRequest error (400).", also=("5.7.2",))
def query_unsupported_option_is_invalid_request(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "options": "noOverwrite"})
    k.expect_problem(response, 400, "InvalidRequest")


@case("6.3.2", "A query parameter Retrieve Entity does not take is an InvalidRequest error (400).", also=("5.7.1",))
def retrieve_unknown_parameter_is_invalid_request(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    k.expect_problem(k.http.get(f"/entities/{body['id']}", params={"limit": "1"}), 400, "InvalidRequest")


@case("6.3.2", "A query parameter Query Subscriptions does not take is an InvalidRequest error (400).", also=("5.8.4",))
def subscriptions_unknown_parameter_is_invalid_request(k: Kit) -> None:
    k.expect_problem(k.http.get("/subscriptions", params={"frobnicate": "1"}), 400, "InvalidRequest")


@case("4.23", "orderBy=id orders the entities by their id.", also=("5.7.2",))
def query_order_by_id(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    response = k.http.get("/entities", params={"type": entity_type, "orderBy": "id;desc", "local": "true"})
    if response.status_code == 400:
        k.missing("orderBy", "orderBy=id with local=true answered 400 (entity ordering is recent, clause 4.23)")
    k.expect_status(response, 200)
    got = [e.get("id") for e in k.json(response)]
    k.expect(got == sorted((e["id"] for e in fleet), reverse=True), f"orderBy=id;desc gave {got}")


@case("4.9", "q with parentheses groups terms: (a|b);c selects as the grammar says.", also=("5.7.2",))
def query_q_parentheses(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    found = k.query({"type": entity_type, "q": '(speed<20|speed>80);brand=="Renault"'})
    _expect_ids(k, found, [fleet[0], fleet[2]], "q=(speed<20|speed>80);brand==Renault")
    found = k.query({"type": entity_type, "q": 'speed<20|(speed>80;brand=="Iveco")'})
    _expect_ids(k, found, [fleet[0]], "q=speed<20|(speed>80;brand==Iveco)")


@case("4.9", 'q with a value list (brand=="a","b") selects the entities matching any value.', also=("5.7.2",))
def query_q_value_list(k: Kit) -> None:
    entity_type, fleet = _fleet(k)
    found = k.query({"type": entity_type, "q": 'brand=="Iveco","Tesla"'})
    _expect_ids(k, found, [fleet[1]], "q=brand==Iveco,Tesla")


@case("4.9", "q on observedAt (attr.observedAt) compares the instance's observation time.", also=("5.7.2",))
def query_q_observed_at(k: Kit) -> None:
    entity_type = k.type_name("Observed")
    early = vehicle(k, entity_type, speed=prop(1, observedAt="2020-01-01T00:00:00Z"))
    late = vehicle(k, entity_type, speed=prop(2, observedAt="2024-01-01T00:00:00Z"))
    k.entity(early)
    k.entity(late)
    found = k.query({"type": entity_type, "q": "speed.observedAt>=2023-01-01T00:00:00Z"})
    _expect_ids(k, found, [late], "q=speed.observedAt>=2023")


@case("4.17", "A type selection A|B (pipe) selects the entities of either type, like A,B.", also=("5.7.2",))
def query_type_selection_pipe(k: Kit) -> None:
    first, second, third = vehicle(k), vehicle(k), vehicle(k)
    for body in (first, second, third):
        k.entity(body)
    _expect_ids(k, k.query({"type": f"{first['type']}|{second['type']}"}), [first, second], "type=A|B")


@case("4.21", "pick with | between names projects like pick with commas.", also=("5.7.2",))
def query_pick_with_pipe(k: Kit) -> None:
    entity_type, _ = _fleet(k)
    picked = k.query({"type": entity_type, "pick": "id|speed"})
    k.expect(all(set(e) - {"@context"} == {"id", "speed"} for e in picked), f"pick=id|speed gave {picked[:1]}")


@case("4.21", "A member named in both pick and omit is a BadRequestData error (400).", also=("5.7.2", "6.4"))
def query_pick_and_omit_one_member_is_400(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "pick": "id,speed", "omit": "speed"})
    k.expect_problem(response, 400, "BadRequestData")


@case("4.21", "omit together with attrs (the deprecated pick) is a BadRequestData error (400).", also=("5.7.2",))
def query_omit_with_attrs_is_400(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "attrs": "speed", "omit": "location"})
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "4.21",
    "A pick or omit name holding a character an attribute name cannot hold is a BadRequestData error (400).",
    also=("4.9", "5.7.2"),
)
def query_projection_bad_name_is_400(k: Kit) -> None:
    for param, value in (("pick", "spe<ed"), ("omit", "a=b"), ("pick", "speed;brand")):
        response = k.http.get("/entities", params={"type": k.type_name(), param: value})
        k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.7.2",
    "geometryProperty without Accept: application/geo+json is a BadRequestData error (400).",
    also=("6.4", "4.5.16"),
)
def query_geometry_property_needs_geojson(k: Kit) -> None:
    response = k.http.get("/entities", params={"type": k.type_name(), "geometryProperty": "location"})
    k.expect_problem(response, 400, "BadRequestData")
