"""Context source registrations and their subscriptions (clauses 5.9, 5.11; HTTP binding 6.8, 6.9, 6.12, 6.13) and
entity maps (6.32, 6.34): optional features, "not implemented" when the broker has no such resource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.cases._shared import expect_entity_map, map_path, vehicle
from conformance.kit import JSON, Kit, case


def _registration(k: Kit, entity_type: str) -> dict[str, Any]:
    return {
        "id": k.uid("ContextSourceRegistration"),
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": entity_type}], "propertyNames": ["speed"]}],
        "endpoint": "http://127.0.0.1:9/unused-context-source",
        "mode": "inclusive",
    }


def _register(k: Kit, body: dict[str, Any]) -> str:
    response = k.post("/csourceRegistrations", body)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    k.delete_later(f"/csourceRegistrations/{body['id']}")
    return str(body["id"])


@case(
    "5.9.2",
    "Register Context Source answers 201 with a Location, and the registration can be retrieved.",
    feature="registrations",
    also=("6.8", "6.9", "5.10.1"),
)
def register_and_retrieve(k: Kit) -> None:
    entity_type = k.type_name()
    body = _registration(k, entity_type)
    reg_id = _register(k, body)
    response = k.http.get(f"/csourceRegistrations/{reg_id}")
    k.expect_status(response, 200)
    got = k.json(response)
    k.expect(got.get("id") == reg_id and got.get("type") == "ContextSourceRegistration", f"got {got!r:.300}")
    k.expect(got.get("endpoint") == body["endpoint"], f"endpoint is {got.get('endpoint')!r}")


@case(
    "5.10.2",
    "Query Context Source Registrations by entity type finds the matching registration.",
    feature="registrations",
    also=("6.8",),
)
def query_registrations(k: Kit) -> None:
    entity_type = k.type_name()
    reg_id = _register(k, _registration(k, entity_type))
    response = k.http.get("/csourceRegistrations", params={"type": entity_type})
    k.expect_status(response, 200)
    k.expect([r.get("id") for r in k.json(response)] == [reg_id], f"got {response.text[:300]!r}")


@case(
    "5.9.4",
    "Delete Context Source Registration answers 204, then the registration is not found (404).",
    feature="registrations",
    also=("6.9",),
)
def delete_registration(k: Kit) -> None:
    reg_id = _register(k, _registration(k, k.type_name()))
    k.expect_status(k.http.delete(f"/csourceRegistrations/{reg_id}"), 204)
    k.expect_problem(k.http.get(f"/csourceRegistrations/{reg_id}"), 404, "ResourceNotFound")


@case(
    "5.11.2",
    "Create Context Source Registration Subscription answers 201, and it can be retrieved and deleted.",
    feature="csource-subscriptions",
    also=("6.12", "6.13"),
)
def csource_subscription_lifecycle(k: Kit) -> None:
    body = {
        "id": k.uid("Subscription"),
        "type": "Subscription",
        "entities": [{"type": k.type_name()}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/unused", "accept": JSON}},
    }
    response = k.post("/csourceSubscriptions", body)
    k.not_implemented_if(response, "csource-subscriptions")
    k.expect_status(response, 201)
    k.delete_later(f"/csourceSubscriptions/{body['id']}")
    k.expect_status(k.http.get(f"/csourceSubscriptions/{body['id']}"), 200)
    k.expect_status(k.http.delete(f"/csourceSubscriptions/{body['id']}"), 204)
    k.expect_status(k.http.get(f"/csourceSubscriptions/{body['id']}"), 404)


# -- helpers of the registration cases ----------------------------------------------------------------------------
CSR = "/csourceRegistrations"
LD = "application/ld+json"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _exclusive(k: Kit, entity_id: str, entity_type: str, attrs: list[str]) -> dict[str, Any]:
    body = _registration(k, entity_type)
    body["mode"] = "exclusive"
    body["information"] = [{"entities": [{"id": entity_id, "type": entity_type}], "propertyNames": attrs}]
    return body


def _retrieved(k: Kit, reg_id: str, **params: str) -> dict[str, Any]:
    response = k.http.get(f"{CSR}/{reg_id}", params=params)
    k.expect_status(response, 200)
    body = k.json(response)
    k.expect(isinstance(body, dict), f"a registration is a JSON object, got {response.text[:200]!r}")
    return dict(body)


def _found(k: Kit, params: dict[str, str]) -> list[str]:
    response = k.http.get(CSR, params=params)
    k.expect_status(response, 200)
    return sorted(str(r.get("id")) for r in k.json(response))


def _refused(k: Kit, body: dict[str, Any], member: str) -> None:
    """400 BadRequestData whose detail names the faulty member, and nothing registered."""
    response = k.post(CSR, body)
    k.not_implemented_if(response, "registrations")
    if response.status_code == 201 and "id" in body:
        k.delete_later(f"{CSR}/{body['id']}")
    problem = k.expect_problem(response, 400, "BadRequestData")
    detail = str(problem.get("detail", "")) + str(problem.get("title", ""))
    k.expect(member in detail, f"the error does not name {member!r}: {detail[:200]!r}")
    if "id" in body:
        k.expect_status(k.http.get(f"{CSR}/{body['id']}"), 404, 400)


def _invalid(name: str, clause: str, requirement: str, member: str, change: Any) -> None:
    """One validation case: a valid registration with one member made invalid (`change` edits the body)."""

    def check(k: Kit) -> None:
        body = _registration(k, k.type_name())
        change(body)
        _refused(k, body, member)

    check.__name__ = name
    check.__qualname__ = name
    case(clause, requirement, feature="registrations", also=("5.9.2", "6.8.3.1"))(check)


def _set(key: str, value: Any) -> Any:
    return lambda body: body.__setitem__(key, value)


def _drop(key: str) -> Any:
    return lambda body: body.pop(key)


def _info(value: Any) -> Any:
    return lambda body: body.__setitem__("information", value)


def _entity(**members: Any) -> Any:
    return lambda body: body.__setitem__("information", [{"entities": [members]}])


# -- Register Context Source: validation of every member (5.2.9, 5.2.10, 5.2.34, 5.9.2.4) --------------------------
_invalid("refuses_missing_type", "5.2.9", "A registration without type is BadRequestData.", "type", _drop("type"))
_invalid(
    "refuses_other_type",
    "5.2.9",
    "A registration whose type is not ContextSourceRegistration is BadRequestData.",
    "type",
    _set("type", "Subscription"),
)
_invalid(
    "refuses_missing_endpoint",
    "5.2.9",
    "A registration without endpoint is BadRequestData.",
    "endpoint",
    _drop("endpoint"),
)
_invalid(
    "refuses_endpoint_not_uri",
    "5.2.9",
    "An endpoint that is not a dereferenceable URI is BadRequestData.",
    "endpoint",
    _set("endpoint", "not a uri"),
)
_invalid(
    "refuses_missing_information",
    "5.2.9",
    "A registration without information is BadRequestData.",
    "information",
    _drop("information"),
)
_invalid(
    "refuses_empty_information",
    "5.2.9",
    "information as an empty array is BadRequestData (Table 5.2.9-1: 'Empty array (0 length) is not allowed').",
    "information",
    _info([]),
)
_invalid(
    "refuses_empty_registration_info",
    "5.2.10",
    "A RegistrationInfo without entities, propertyNames or relationshipNames is BadRequestData.",
    "information[0]",
    _info([{}]),
)
_invalid(
    "refuses_entity_info_without_type",
    "5.2.8",
    "An EntityInfo without type is BadRequestData.",
    "type",
    _entity(id="urn:ngsi-ld:Vehicle:conformance-no-type"),
)
_invalid(
    "refuses_entity_info_id_not_uri",
    "5.2.8",
    "An EntityInfo id that is not a URI is BadRequestData.",
    "id",
    _entity(id="not a uri", type="Vehicle"),
)
_invalid(
    "refuses_invalid_id_pattern",
    "5.2.8",
    "An EntityInfo idPattern that is not a regular expression is BadRequestData.",
    "idPattern",
    _entity(idPattern="urn:(unclosed", type="Vehicle"),
)
_invalid(
    "refuses_property_names_not_strings",
    "5.2.10",
    "propertyNames that is not an array of names is BadRequestData.",
    "propertyNames",
    _info([{"propertyNames": [17]}]),
)
_invalid(
    "refuses_relationship_names_not_array",
    "5.2.10",
    "relationshipNames that is not an array is BadRequestData.",
    "relationshipNames",
    _info([{"relationshipNames": "isParkedIn"}]),
)
_invalid(
    "refuses_unknown_mode",
    "5.2.9",
    "A mode other than inclusive, exclusive, redirect or auxiliary is BadRequestData.",
    "mode",
    _set("mode", "proxy"),
)
_invalid(
    "refuses_unknown_operation",
    "4.20",
    "An operations entry that is neither an operation name of Table 4.20-1 nor a group of Table 4.20-2 is "
    "BadRequestData.",
    "operations",
    _set("operations", ["retrieveEntity", "teleportEntity"]),
)
_invalid(
    "refuses_invalid_location",
    "5.2.9",
    "A location that is not a GeoJSON Geometry is BadRequestData.",
    "location",
    _set("location", {"type": "Point", "coordinates": "north"}),
)
_invalid(
    "refuses_invalid_observation_space",
    "5.2.9",
    "An observationSpace that is not a GeoJSON Geometry is BadRequestData.",
    "observationSpace",
    _set("observationSpace", {"type": "Circle", "coordinates": [1, 2]}),
)
_invalid(
    "refuses_interval_without_start",
    "5.2.11",
    "An observationInterval without startAt is BadRequestData.",
    "observationInterval",
    _set("observationInterval", {"endAt": "2030-01-01T00:00:00Z"}),
)
_invalid(
    "refuses_interval_ending_before_start",
    "5.2.11",
    "A managementInterval whose endAt is before its startAt is BadRequestData.",
    "managementInterval",
    _set("managementInterval", {"startAt": "2030-01-02T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"}),
)
_invalid(
    "refuses_expires_at_not_datetime",
    "5.2.9",
    "An expiresAt that is not a DateTime is BadRequestData.",
    "expiresAt",
    _set("expiresAt", "tomorrow"),
)
_invalid(
    "refuses_expires_at_in_the_past",
    "5.9.2",
    "A registration that has already expired is BadRequestData.",
    "expiresAt",
    _set("expiresAt", "2001-01-01T00:00:00Z"),
)
_invalid(
    "refuses_refresh_rate_not_duration",
    "5.2.9",
    "A refreshRate that is not an ISO 8601 duration is BadRequestData.",
    "refreshRate",
    _set("refreshRate", "every minute"),
)
_invalid(
    "refuses_timeout_not_positive",
    "5.2.34",
    "A management.timeout that is not a number greater than 0 is BadRequestData.",
    "timeout",
    _set("management", {"timeout": 0}),
)
_invalid(
    "refuses_cooldown_not_number",
    "5.2.34",
    "A management.cooldown that is not a number is BadRequestData.",
    "cooldown",
    _set("management", {"cooldown": "10s"}),
)
_invalid(
    "refuses_cache_duration_not_duration",
    "5.2.34",
    "A management.cacheDuration that is not an ISO 8601 duration is BadRequestData.",
    "cacheDuration",
    _set("management", {"cacheDuration": 30}),
)
_invalid(
    "refuses_local_only_not_boolean",
    "5.2.34",
    "A management.localOnly that is not a boolean is BadRequestData.",
    "localOnly",
    _set("management", {"localOnly": "yes"}),
)
_invalid(
    "refuses_context_source_info_without_key",
    "5.2.22",
    "A contextSourceInfo KeyValuePair without key is BadRequestData.",
    "contextSourceInfo",
    _set("contextSourceInfo", [{"value": "abc"}]),
)
_invalid(
    "refuses_invalid_scope",
    "4.18",
    "A scope that is not a scope path is BadRequestData.",
    "scope",
    _set("scope", "no-leading-slash"),
)
_invalid(
    "refuses_empty_tenant",
    "5.2.9",
    "A tenant that is not a non-empty string is BadRequestData.",
    "tenant",
    _set("tenant", ""),
)
_invalid(
    "refuses_registration_id_not_uri",
    "5.2.9",
    "A registration id that is not a URI is BadRequestData.",
    "id",
    _set("id", "registration one"),
)


@case(
    "5.2.9",
    "Register Context Source without an id answers 201, and the Location names the id the broker assigned.",
    feature="registrations",
    also=("5.9.2", "6.8.3.1"),
)
def assigns_an_id(k: Kit) -> None:
    body = _registration(k, k.type_name())
    del body["id"]
    response = k.post(CSR, body)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    location = response.headers.get("Location", "")
    k.expect(
        location.startswith("/ngsi-ld/v1/csourceRegistrations/") or "/csourceRegistrations/" in location,
        f"Location is {location!r}",
    )
    reg_id = location.rsplit("/", 1)[-1]
    k.delete_later(f"{CSR}/{reg_id}")
    k.expect(_retrieved(k, reg_id).get("id") == reg_id, "the registration at Location has another id")


@case(
    "5.9.2",
    "Registering an id that is already registered is AlreadyExists (409).",
    feature="registrations",
    also=("6.8.3.1",),
)
def refuses_duplicate_id(k: Kit) -> None:
    body = _registration(k, k.type_name())
    _register(k, body)
    k.expect_problem(k.post(CSR, body), 409, "AlreadyExists")


@case(
    "5.2.9",
    "Read-only members (status, timesSent, ...) sent in a registration are ignored: 201, and not shown as sent.",
    feature="registrations",
    also=("5.9.2",),
)
def ignores_read_only_members(k: Kit) -> None:
    body = {**_registration(k, k.type_name()), "timesSent": 99, "status": "failed"}
    _register(k, body)
    got = _retrieved(k, body["id"])
    k.expect(got.get("timesSent") != 99 and got.get("status") != "failed", f"read-only members kept: {got!r:.300}")


@case(
    "4.20",
    "An operation group name (federationOps) is accepted in operations and shown back.",
    feature="registrations",
    also=("5.2.9",),
)
def accepts_operation_groups(k: Kit) -> None:
    body = {**_registration(k, k.type_name()), "operations": ["federationOps", "updateOps"]}
    _register(k, body)
    k.expect(_retrieved(k, body["id"]).get("operations") == ["federationOps", "updateOps"], "operations changed")


@case(
    "5.2.9",
    "Every optional member of Table 5.2.9-1 with a valid value is accepted (201) and retrieved as written.",
    feature="registrations",
    also=("5.2.10", "5.2.34", "5.9.2"),
)
def accepts_every_member(k: Kit) -> None:
    body = {
        **_registration(k, k.type_name()),
        "registrationName": "water utility",
        "description": "the utility's own broker",
        "contextSourceInfo": [{"key": "Authorization", "value": "urn:ngsi-ld:request"}],
        "location": {"type": "Point", "coordinates": [-3.7, 40.4]},
        "observationSpace": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        "operationSpace": {"type": "Point", "coordinates": [0.5, 0.5]},
        "observationInterval": {"startAt": "2020-01-01T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"},
        "managementInterval": {"startAt": "2020-01-01T00:00:00Z"},
        "operations": ["retrieveEntity", "queryEntity"],
        "refreshRate": "PT1M",
        "management": {"localOnly": True, "cacheDuration": "PT5S", "timeout": 2000, "cooldown": 500},
        "scope": ["/Madrid/Water"],
        "tenant": "utility",
        "expiresAt": _later(3600),
    }
    _register(k, body)
    got = _retrieved(k, body["id"])
    differ = sorted(m for m in body if m != "expiresAt" and got.get(m) != body[m])
    k.expect(not differ, f"members not retrieved as written: {differ}")


@case(
    "5.2.9",
    "Entity types are stored by IRI: registered with an @context, found and shown by the full IRI without it.",
    feature="registrations",
    also=("5.10.2", "6.8.3.2"),
)
def stored_expanded(k: Kit) -> None:
    short = k.type_name("Bus")
    iri = f"https://example.org/transport/{short}"
    body = _registration(k, short)
    body["@context"] = [{short: iri}, CORE]
    response = k.post(CSR, body, content_type=LD)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    k.delete_later(f"{CSR}/{body['id']}")
    k.expect(_found(k, {"type": iri}) == [body["id"]], "the registration is not found by its type's IRI")
    shown = _retrieved(k, body["id"])["information"][0]["entities"][0]["type"]
    k.expect(shown == iri, f"the type is shown as {shown!r}, expected {iri!r} without the registration's @context")


# -- Retrieve (5.10.1, 6.9.3.1) -------------------------------------------------------------------------------------
@case(
    "5.10.1",
    "Retrieve Context Source Registration of an unknown id is ResourceNotFound.",
    feature="registrations",
    also=("6.9.3.1",),
)
def retrieve_unknown(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSR), "registrations")
    k.expect_problem(k.http.get(f"{CSR}/{k.uid('ContextSourceRegistration')}"), 404, "ResourceNotFound")


@case(
    "5.10.1",
    "Retrieve Context Source Registration with an id that is not a URI is BadRequestData.",
    feature="registrations",
    also=("6.9.3.1",),
)
def retrieve_not_uri(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSR), "registrations")
    k.expect_problem(k.http.get(f"{CSR}/not-a-uri"), 400, "BadRequestData")


@case(
    "5.10.1",
    "options=sysAttrs shows createdAt and modifiedAt of a registration.",
    feature="registrations",
    also=("6.9.3.1", "4.8"),
)
def retrieve_sys_attrs(k: Kit) -> None:
    body = _registration(k, k.type_name())
    _register(k, body)
    got = _retrieved(k, body["id"], options="sysAttrs")
    k.expect("createdAt" in got and "modifiedAt" in got, f"no createdAt/modifiedAt: {got!r:.300}")


# -- Update (5.9.3, 6.9.3.2) ------------------------------------------------------------------------------------------
@case(
    "5.9.3",
    "Update Context Source Registration answers 204 and the new member value is retrieved.",
    feature="registrations",
    also=("6.9.3.2",),
)
def update_member(k: Kit) -> None:
    body = _registration(k, k.type_name())
    _register(k, body)
    k.expect_status(k.patch(f"{CSR}/{body['id']}", {"endpoint": "http://127.0.0.1:9/moved"}), 204)
    got = _retrieved(k, body["id"])
    k.expect(got.get("endpoint") == "http://127.0.0.1:9/moved", f"endpoint is {got.get('endpoint')!r}")
    k.expect(got.get("information") == body["information"], "information changed although not in the fragment")


@case(
    "5.9.3",
    "Update Context Source Registration with null removes an optional member.",
    feature="registrations",
    also=("6.9.3.2",),
)
def update_null_removes(k: Kit) -> None:
    body = {**_registration(k, k.type_name()), "description": "to be removed"}
    _register(k, body)
    k.expect_status(k.patch(f"{CSR}/{body['id']}", {"description": None}), 204)
    k.expect("description" not in _retrieved(k, body["id"]), "description is still there")


@case(
    "5.9.3",
    "An update that makes a member invalid is BadRequestData, and the registration is unchanged.",
    feature="registrations",
    also=("6.9.3.2",),
)
def update_invalid_member(k: Kit) -> None:
    body = _registration(k, k.type_name())
    _register(k, body)
    k.expect_problem(k.patch(f"{CSR}/{body['id']}", {"mode": "sometimes"}), 400, "BadRequestData")
    k.expect(_retrieved(k, body["id"]).get("mode") == "inclusive", "the mode changed")


@case(
    "5.9.3",
    "Update Context Source Registration of an unknown id is ResourceNotFound.",
    feature="registrations",
    also=("6.9.3.2",),
)
def update_unknown(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSR), "registrations")
    response = k.patch(f"{CSR}/{k.uid('ContextSourceRegistration')}", {"description": "x"})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.2.9",
    "The id of a registration cannot be modified in an update: BadRequestData.",
    feature="registrations",
    also=("5.9.3", "6.9.3.2"),
)
def update_cannot_change_id(k: Kit) -> None:
    body = _registration(k, k.type_name())
    _register(k, body)
    response = k.patch(f"{CSR}/{body['id']}", {"id": k.uid("ContextSourceRegistration")})
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.9.3",
    "Removing a mandatory member (information) in an update is BadRequestData.",
    feature="registrations",
    also=("6.9.3.2", "5.2.9"),
)
def update_cannot_remove_mandatory(k: Kit) -> None:
    body = _registration(k, k.type_name())
    _register(k, body)
    k.expect_problem(k.patch(f"{CSR}/{body['id']}", {"information": None}), 400, "BadRequestData")


# -- Delete (5.9.4, 6.9.3.3) ----------------------------------------------------------------------------------------
@case(
    "5.9.4",
    "Delete Context Source Registration of an unknown id is ResourceNotFound.",
    feature="registrations",
    also=("6.9.3.3",),
)
def delete_unknown(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSR), "registrations")
    k.expect_problem(k.http.delete(f"{CSR}/{k.uid('ContextSourceRegistration')}"), 404, "ResourceNotFound")


# -- Query / discover (5.10.2, 6.8.3.2) --------------------------------------------------------------------------------
@case(
    "5.10.2",
    "Query by an entity id finds the registration of that id and the one of its type with no id, not another id's.",
    feature="registrations",
    also=("6.8.3.2",),
)
def query_by_id(k: Kit) -> None:
    entity_type = k.type_name()
    mine, other = k.uid("Vehicle"), k.uid("Vehicle")
    by_id, by_other, by_type = (_registration(k, entity_type) for _ in range(3))
    by_id["information"] = [{"entities": [{"id": mine, "type": entity_type}]}]
    by_other["information"] = [{"entities": [{"id": other, "type": entity_type}]}]
    for body in (by_id, by_other, by_type):
        _register(k, body)
    found = _found(k, {"id": mine, "type": entity_type})
    k.expect(found == sorted([by_id["id"], by_type["id"]]), f"found {found}")


@case(
    "5.10.2",
    "Query by idPattern finds the registrations whose entity id matches the pattern.",
    feature="registrations",
    also=("6.8.3.2",),
)
def query_by_id_pattern(k: Kit) -> None:
    entity_type = k.type_name()
    a, b = _registration(k, entity_type), _registration(k, entity_type)
    a["information"] = [{"entities": [{"id": "urn:ngsi-ld:Vehicle:north-1", "type": entity_type}]}]
    b["information"] = [{"entities": [{"id": "urn:ngsi-ld:Vehicle:south-1", "type": entity_type}]}]
    _register(k, a)
    _register(k, b)
    k.expect(_found(k, {"type": entity_type, "idPattern": ".*north.*"}) == [a["id"]], "idPattern did not select")


@case(
    "5.10.2",
    "Query by attrs finds the registrations that provide one of the attributes, or every attribute.",
    feature="registrations",
    also=("6.8.3.2",),
)
def query_by_attrs(k: Kit) -> None:
    entity_type = k.type_name()
    speed, fuel, every = (_registration(k, entity_type) for _ in range(3))
    fuel["information"] = [{"entities": [{"type": entity_type}], "propertyNames": ["fuel"]}]
    every["information"] = [{"entities": [{"type": entity_type}]}]
    for body in (speed, fuel, every):
        _register(k, body)
    found = _found(k, {"type": entity_type, "attrs": "speed"})
    k.expect(found == sorted([speed["id"], every["id"]]), f"found {found}")


@case(
    "5.10.2",
    "Query with a geo-query finds a registration whose location is near the point, not one far away.",
    feature="registrations",
    also=("6.8.3.2", "4.10"),
)
def query_by_geo(k: Kit) -> None:
    entity_type = k.type_name()
    near, far = _registration(k, entity_type), _registration(k, entity_type)
    near["location"] = {"type": "Point", "coordinates": [-3.70, 40.41]}
    far["location"] = {"type": "Point", "coordinates": [2.17, 41.38]}
    _register(k, near)
    _register(k, far)
    params = {
        "type": entity_type,
        "georel": "near;maxDistance==5000",
        "geometry": "Point",
        "coordinates": "[-3.70,40.42]",
    }
    k.expect(_found(k, params) == [near["id"]], "the geo-query did not select the near registration only")


@case(
    "5.10.2",
    "Query with a temporal filter finds the registrations whose observationInterval overlaps it.",
    feature="registrations",
    also=("6.8.3.2", "5.2.11"),
)
def query_by_time(k: Kit) -> None:
    entity_type = k.type_name()
    old, recent = _registration(k, entity_type), _registration(k, entity_type)
    old["observationInterval"] = {"startAt": "2001-01-01T00:00:00Z", "endAt": "2002-01-01T00:00:00Z"}
    recent["observationInterval"] = {"startAt": "2020-01-01T00:00:00Z"}
    _register(k, old)
    _register(k, recent)
    params = {"type": entity_type, "timerel": "after", "timeAt": "2010-01-01T00:00:00Z"}
    k.expect(_found(k, params) == [recent["id"]], "the temporal filter did not select the recent registration")


@case(
    "5.10.2",
    "Query with csf selects registrations by their own members (registrationName).",
    feature="registrations",
    also=("6.8.3.2", "4.9"),
)
def query_by_csf(k: Kit) -> None:
    entity_type = k.type_name()
    a, b = _registration(k, entity_type), _registration(k, entity_type)
    a["registrationName"], b["registrationName"] = "water", "transport"
    _register(k, a)
    _register(k, b)
    k.expect(_found(k, {"type": entity_type, "csf": 'registrationName=="water"'}) == [a["id"]], "csf did not select")


@case(
    "5.10.2",
    "Query by a type no registration names finds nothing (200, empty array).",
    feature="registrations",
    also=("6.8.3.2",),
)
def query_finds_nothing(k: Kit) -> None:
    _register(k, _registration(k, k.type_name()))
    k.expect(_found(k, {"type": k.type_name("Absent")}) == [], "a registration of another type was found")


@case(
    "6.8.3.2",
    "Query pages registrations with limit and offset, counts them with count=true and links the next page.",
    feature="registrations",
    also=("5.10.2", "6.3.10"),
)
def query_paging(k: Kit) -> None:
    entity_type = k.type_name()
    ids = sorted(_register(k, _registration(k, entity_type)) for _ in range(3))
    first = k.http.get(CSR, params={"type": entity_type, "limit": "2", "count": "true"})
    k.expect_status(first, 200)
    k.expect(first.headers.get("NGSILD-Results-Count") == "3", f"count {first.headers.get('NGSILD-Results-Count')}")
    k.expect('rel="next"' in first.headers.get("Link", ""), "no Link rel=next on the first page")
    second = k.http.get(CSR, params={"type": entity_type, "limit": "2", "offset": "2"})
    k.expect_status(second, 200)
    seen = sorted(r["id"] for r in k.json(first) + k.json(second))
    k.expect(seen == ids, f"the pages hold {seen}")


@case(
    "5.10.2",
    "Without a temporal query, a registration with an observationInterval (temporal data only) is not found.",
    feature="registrations",
    also=("6.8.3.2", "5.2.9"),
)
def query_latest_only_without_temporal_query(k: Kit) -> None:
    entity_type = k.type_name()
    latest, history = _registration(k, entity_type), _registration(k, entity_type)
    history["observationInterval"] = {"startAt": "2020-01-01T00:00:00Z"}
    _register(k, latest)
    _register(k, history)
    k.expect(_found(k, {"type": entity_type}) == [latest["id"]], "a temporal-only registration was found")


@case(
    "5.10.2",
    "Query with scopeQ finds the registrations whose scope matches, not those of another scope.",
    feature="registrations",
    also=("6.8.3.2", "4.19"),
)
def query_by_scope(k: Kit) -> None:
    entity_type = k.type_name()
    water, transport = _registration(k, entity_type), _registration(k, entity_type)
    water["scope"], transport["scope"] = "/City/Water", "/City/Transport"
    _register(k, water)
    _register(k, transport)
    k.expect(_found(k, {"type": entity_type, "scopeQ": "/City/Water"}) == [water["id"]], "scopeQ did not select")


@case(
    "6.8.3.2",
    "A timerel without timeAt is BadRequestData.",
    feature="registrations",
    also=("5.10.2",),
)
def query_timerel_needs_time_at(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSR), "registrations")
    k.expect_problem(k.http.get(CSR, params={"type": k.type_name(), "timerel": "after"}), 400, "BadRequestData")


# -- Conflicts between proxied registrations (4.3.6.3) ----------------------------------------------------------------
@case(
    "4.3.6.3",
    "An exclusive registration that names an entity type without an entity id is BadRequestData.",
    feature="registrations",
    also=("5.9.2",),
)
def exclusive_needs_entity_id(k: Kit) -> None:
    body = {**_registration(k, k.type_name()), "mode": "exclusive"}
    _refused(k, body, "exclusive")


@case(
    "4.3.6.3",
    "An exclusive registration that names no attributes is BadRequestData.",
    feature="registrations",
    also=("5.9.2",),
)
def exclusive_needs_attributes(k: Kit) -> None:
    entity_type = k.type_name()
    body = {**_registration(k, entity_type), "mode": "exclusive"}
    body["information"] = [{"entities": [{"id": k.uid("Vehicle"), "type": entity_type}]}]
    _refused(k, body, "exclusive")


@case(
    "4.3.6.3",
    "A second exclusive registration for the same entity id and attribute is refused with 409.",
    feature="registrations",
    also=("5.9.2",),
)
def exclusive_conflicts_with_exclusive(k: Kit) -> None:
    entity_type, entity_id = k.type_name(), k.uid("Vehicle")
    _register(k, _exclusive(k, entity_id, entity_type, ["speed"]))
    second = _exclusive(k, entity_id, entity_type, ["speed", "fuel"])
    response = k.post(CSR, second)
    if response.status_code == 201:
        k.delete_later(f"{CSR}/{second['id']}")
    k.expect_problem(response, 409)


@case(
    "4.3.6.3",
    "A redirect registration of a type that covers an exclusively registered entity attribute is refused with 409.",
    feature="registrations",
    also=("5.9.2",),
)
def redirect_conflicts_with_exclusive(k: Kit) -> None:
    entity_type, entity_id = k.type_name(), k.uid("Vehicle")
    _register(k, _exclusive(k, entity_id, entity_type, ["speed"]))
    redirect = {**_registration(k, entity_type), "mode": "redirect"}
    response = k.post(CSR, redirect)
    if response.status_code == 201:
        k.delete_later(f"{CSR}/{redirect['id']}")
    k.expect_problem(response, 409)


@case(
    "4.3.6.3",
    "An exclusive registration is refused with 409 when a redirect registration already covers that attribute.",
    feature="registrations",
    also=("5.9.2",),
)
def exclusive_conflicts_with_redirect(k: Kit) -> None:
    entity_type, entity_id = k.type_name(), k.uid("Vehicle")
    _register(k, {**_registration(k, entity_type), "mode": "redirect"})
    exclusive = _exclusive(k, entity_id, entity_type, ["speed"])
    response = k.post(CSR, exclusive)
    if response.status_code == 201:
        k.delete_later(f"{CSR}/{exclusive['id']}")
    k.expect_problem(response, 409)


@case(
    "4.3.6.3",
    "Several overlapping redirect registrations are accepted ('multiple distinct redirect registrations can apply').",
    feature="registrations",
    also=("5.9.2",),
)
def redirects_may_overlap(k: Kit) -> None:
    entity_type = k.type_name()
    _register(k, {**_registration(k, entity_type), "mode": "redirect"})
    _register(k, {**_registration(k, entity_type), "mode": "redirect"})


@case(
    "4.3.6.2",
    "Inclusive and auxiliary registrations over an exclusively registered attribute are accepted (never a conflict).",
    feature="registrations",
    also=("4.3.6.3", "5.9.2"),
)
def additive_never_conflicts(k: Kit) -> None:
    entity_type, entity_id = k.type_name(), k.uid("Vehicle")
    _register(k, _exclusive(k, entity_id, entity_type, ["speed"]))
    _register(k, _registration(k, entity_type))
    _register(k, {**_registration(k, entity_type), "mode": "auxiliary"})


@case(
    "4.3.6.3",
    "An exclusive registration of another attribute of the same entity is accepted.",
    feature="registrations",
    also=("5.9.2",),
)
def exclusive_other_attribute(k: Kit) -> None:
    entity_type, entity_id = k.type_name(), k.uid("Vehicle")
    _register(k, _exclusive(k, entity_id, entity_type, ["speed"]))
    _register(k, _exclusive(k, entity_id, entity_type, ["fuel"]))


@case(
    "4.3.6.3",
    "An update that makes a registration conflict with an exclusive one is refused with 409 and changes nothing.",
    feature="registrations",
    also=("5.9.3", "6.9.3.2"),
)
def update_into_conflict(k: Kit) -> None:
    entity_type, entity_id = k.type_name(), k.uid("Vehicle")
    _register(k, _exclusive(k, entity_id, entity_type, ["speed"]))
    body = _registration(k, entity_type)
    _register(k, body)
    k.expect_problem(k.patch(f"{CSR}/{body['id']}", {"mode": "redirect"}), 409)
    k.expect(_retrieved(k, body["id"]).get("mode") == "inclusive", "the mode changed")


@case(
    "4.3.6.2",
    "An auxiliary registration that offers a provision operation is BadRequestData (auxiliary operations are "
    "limited to context information consumption).",
    feature="registrations",
    also=("4.20", "5.9.2"),
)
def auxiliary_is_read_only(k: Kit) -> None:
    body = {**_registration(k, k.type_name()), "mode": "auxiliary", "operations": ["retrieveEntity", "updateAttrs"]}
    _refused(k, body, "operations")


# -- Expiry and tenants -------------------------------------------------------------------------------------------
@case(
    "5.2.9",
    "A registration whose expiresAt has passed is no longer retrieved or found by a query.",
    feature="registrations",
    also=("5.9.3", "5.10.1", "5.10.2"),
)
def expiry(k: Kit) -> None:
    entity_type = k.type_name()
    body = {**_registration(k, entity_type), "expiresAt": _later(3600)}
    _register(k, body)
    k.expect_status(k.patch(f"{CSR}/{body['id']}", {"expiresAt": _later(1.5)}), 204)
    k.expect(_found(k, {"type": entity_type}) == [body["id"]], "the registration is not found before it expires")
    gone = k.wait_until(lambda: k.http.get(f"{CSR}/{body['id']}").status_code == 404, timeout=6)
    k.expect(gone, "the registration is still retrieved after its expiresAt")
    k.expect(_found(k, {"type": entity_type}) == [], "an expired registration is still found by a query")


@case(
    "4.14",
    "A registration belongs to the tenant it was created in: another tenant neither retrieves nor finds it.",
    feature="registrations",
    also=("5.9.2", "5.10.2"),
)
def registrations_per_tenant(k: Kit) -> None:
    entity_type = k.type_name()
    tenant = {"NGSILD-Tenant": f"conf{k.type_name('Tenant').lower()}"}
    body = _registration(k, entity_type)
    response = k.post(CSR, body, headers=tenant)
    k.not_implemented_if(response, "registrations")
    if response.status_code == 501:
        k.missing("tenancy", "NoMultiTenantSupport")
    k.expect_status(response, 201)
    k.delete_later(f"{CSR}/{body['id']}", headers=tenant)
    k.expect_status(k.http.get(f"{CSR}/{body['id']}", headers=tenant), 200)
    k.expect_status(k.http.get(f"{CSR}/{body['id']}"), 404)
    k.expect(_found(k, {"type": entity_type}) == [], "the default tenant finds another tenant's registration")


@case(
    "6.34",
    "GET /entityMaps with query parameters answers 201 with an EntityMap named in the NGSILD-EntityMap header.",
    feature="entity-maps",
    also=("6.32", "5.14.4"),
)
def create_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entityMaps", params={"type": body["type"]})
    k.expect_status(response, 201)
    path = map_path(k, response)
    expect_entity_map(k, k.json(response), {body["id"]})
    k.expect_status(k.http.get(path), 200)
    k.expect_status(k.http.delete(path), 204)
    k.expect_problem(k.http.get(path), 404, "ResourceNotFound")


@case(
    "6.34",
    "POST /entityMaps with a Query body answers 201 with the EntityMap of the matching entities.",
    feature="entity-maps",
    also=("5.14.4",),
)
def create_entity_map_by_post(k: Kit) -> None:
    slow, fast = (
        vehicle(k, speed={"type": "Property", "value": 10}),
        vehicle(k, speed={"type": "Property", "value": 90}),
    )
    fast["type"] = slow["type"]
    k.entity(slow)
    k.entity(fast)
    response = k.post("/entityMaps", {"type": "Query", "entities": [{"type": slow["type"]}], "q": "speed>50"})
    k.expect_status(response, 201)
    map_path(k, response)
    expect_entity_map(k, k.json(response), {fast["id"]})


@case(
    "6.34",
    "A query with entityMap=true answers 201, names its EntityMap in the NGSILD-EntityMap header, and the map can be "
    "retrieved.",
    feature="entity-maps",
    also=("6.32", "5.7.2", "6.4"),
)
def query_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entities", params={"type": body["type"], "entityMap": "true"})
    k.expect_status(response, 201)
    path = map_path(k, response)
    retrieved = k.http.get(path)
    k.expect_status(retrieved, 200)
    expect_entity_map(k, k.json(retrieved), {body["id"]})


@case(
    "5.5.9",
    "Paging with an EntityMap: the pages read the entities the map froze, not one created afterwards.",
    feature="entity-maps",
    also=("5.7.2", "6.4"),
)
def paging_with_entity_map(k: Kit) -> None:
    entity_type = k.type_name("Paged")
    fleet = [vehicle(k, entity_type) for _ in range(4)]
    for entity in fleet:
        k.entity(entity)
    first = k.http.get("/entities", params={"type": entity_type, "limit": "2", "entityMap": "true"})
    k.expect_status(first, 201)
    map_path(k, first)
    k.entity(vehicle(k, entity_type))  # after the map: not part of it
    header = {"NGSILD-EntityMap": first.headers["NGSILD-EntityMap"]}
    second = k.http.get("/entities", params={"type": entity_type, "limit": "2", "offset": "2"}, headers=header)
    k.expect_status(second, 200)
    k.expect("NGSILD-EntityMap" in second.headers, "a page read with an EntityMap does not name it")
    seen = [e.get("id") for e in k.json(first) + k.json(second)]
    expected = sorted(e["id"] for e in fleet)
    k.expect(sorted(str(i) for i in seen) == expected, f"the two pages hold {seen}, expected the 4 mapped entities")


@case(
    "5.14.1",
    "Retrieve EntityMap: an unknown id is ResourceNotFound, an id that is not a URI BadRequestData.",
    feature="entity-maps",
    also=("6.32", "5.14.3"),
)
def entity_map_errors(k: Kit) -> None:
    unknown = k.uid("EntityMap")
    k.not_implemented_if(k.http.get(f"/entityMaps/{unknown}"), "entity-maps")
    k.expect_problem(k.http.get(f"/entityMaps/{unknown}"), 404, "ResourceNotFound")
    k.expect_problem(k.http.delete(f"/entityMaps/{unknown}"), 404, "ResourceNotFound")
    k.expect_problem(k.http.get("/entityMaps/not-a-uri"), 400, "BadRequestData")


@case(
    "5.14.2",
    "Update EntityMap: a new expiresAt answers 204 and shows in the retrieved map.",
    feature="entity-maps",
    also=("6.32",),
)
def update_entity_map(k: Kit) -> None:
    body = vehicle(k)
    k.entity(body)
    response = k.http.get("/entityMaps", params={"type": body["type"]})
    k.expect_status(response, 201)
    path = map_path(k, response)
    before = k.json(response).get("expiresAt")
    later = (datetime.now(UTC) + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    k.expect_status(k.patch(path, {"expiresAt": later}), 204)
    after = k.json(k.http.get(path)).get("expiresAt")
    k.expect(after != before, f"expiresAt is still {before!r} after the update to {later}")
