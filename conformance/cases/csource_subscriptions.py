"""Context source registration subscriptions (clauses 5.11, 5.12, 5.3.2, 5.3.3; HTTP binding 6.12, 6.13): create,
retrieve, query, update, delete, the validation of each member (the Subscription data type of 5.2.12), and the
CsourceNotifications sent to the kit's HTTP receiver when registrations are created, updated or deleted. An optional
feature: "not implemented" when the broker has no /csourceSubscriptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from conformance.helpers import Received
from conformance.kit import JSON, Kit, case

CSS = "/csourceSubscriptions"
CSR = "/csourceRegistrations"
FEATURE = "csource-subscriptions"
LD = "application/ld+json"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
UNUSED = "http://127.0.0.1:9/unused"


# -- helpers ---------------------------------------------------------------------------------------------------------
def _subscription(k: Kit, uri: str = UNUSED, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": k.uid("Subscription"), "type": "Subscription"}
    body.update(members)
    if "entities" not in members and "watchedAttributes" not in members:
        body["entities"] = [{"type": k.type_name()}]
    body.setdefault("notification", {"endpoint": {"uri": uri, "accept": JSON}})
    return body


def _post(k: Kit, body: dict[str, Any]) -> httpx.Response:
    response = k.post(CSS, body)
    k.not_implemented_if(response, FEATURE)
    if response.status_code == 201 and "id" in body:
        k.delete_later(f"{CSS}/{body['id']}")
    return response


def _subscribe(k: Kit, body: dict[str, Any]) -> str:
    k.expect_status(_post(k, body), 201)
    return str(body["id"])


def _retrieved(k: Kit, sub_id: str) -> dict[str, Any]:
    response = k.http.get(f"{CSS}/{sub_id}")
    k.expect_status(response, 200)
    body = k.json(response)
    k.expect(isinstance(body, dict), f"a subscription is a JSON object, got {response.text[:200]!r}")
    return dict(body)


def _registration(k: Kit, entity_type: str, **members: Any) -> dict[str, Any]:
    body = {
        "id": k.uid("ContextSourceRegistration"),
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": entity_type}]}],
        "endpoint": "http://127.0.0.1:9/unused-context-source",
    }
    body.update(members)
    return body


def _register(k: Kit, body: dict[str, Any]) -> str:
    response = k.post(CSR, body)
    k.not_implemented_if(response, "registrations")
    k.expect_status(response, 201)
    k.delete_later(f"{CSR}/{body['id']}")
    return str(body["id"])


def _notes(k: Kit, path: str) -> list[dict[str, Any]]:
    return [r.body for r in k.receiver.received(path) if isinstance(r.body, dict)]


def _notified(k: Kit, path: str, reg_id: str, reason: str | None = None) -> dict[str, Any]:
    """The first CsourceNotification at `path` carrying registration `reg_id` (with `reason`), waited for."""

    def find() -> dict[str, Any] | None:
        for note in _notes(k, path):
            ids = [r.get("id") for r in note.get("data", []) if isinstance(r, dict)]
            if reg_id in ids and (reason is None or note.get("triggerReason") == reason):
                return note
        return None

    k.wait_until(lambda: find() is not None)
    note = find()
    if note is None:
        seen = [(n.get("triggerReason"), [r.get("id") for r in n.get("data", [])]) for n in _notes(k, path)]
        k.fail(
            f"no CsourceNotification about {reg_id} ({reason or 'any reason'}) within the timeout; got {seen!r:.400}"
        )
    assert note is not None
    return note


def _ids_notified(k: Kit, path: str) -> set[str]:
    return {str(r.get("id")) for note in _notes(k, path) for r in note.get("data", []) if isinstance(r, dict)}


def _refused(k: Kit, body: dict[str, Any], member: str) -> None:
    """400 BadRequestData whose detail names the faulty member, and nothing created."""
    problem = k.expect_problem(_post(k, body), 400, "BadRequestData")
    detail = str(problem.get("detail", "")) + str(problem.get("title", ""))
    k.expect(member in detail, f"the error does not name {member!r}: {detail[:200]!r}")
    k.expect_status(k.http.get(f"{CSS}/{body['id']}"), 404, 400)


def _invalid(name: str, clause: str, requirement: str, member: str, change: Callable[[dict[str, Any]], None]) -> None:
    """One validation case: a valid subscription with one member made invalid (`change` edits the body)."""

    def check(k: Kit) -> None:
        body = _subscription(k)
        change(body)
        _refused(k, body, member)

    check.__name__ = name
    check.__qualname__ = name
    case(clause, requirement, feature=FEATURE, also=("5.11.2", "6.12.3.1"))(check)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(key)


def _endpoint(**members: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["notification"]["endpoint"].update(members)


# -- Create, Retrieve, Query, Update, Delete (5.11.2-5.11.6, 6.12, 6.13) --------------------------------------------
@case(
    "6.12.3.1",
    "Create answers 201 with a Location header holding the relative path of the new subscription.",
    feature=FEATURE,
    also=("5.11.2",),
)
def create_answers_location(k: Kit) -> None:
    body = _subscription(k)
    response = _post(k, body)
    k.expect_status(response, 201)
    location = response.headers.get("location", "")
    k.expect(location.endswith(f"/csourceSubscriptions/{body['id']}"), f"Location is {location!r}")


@case(
    "5.11.2",
    "A subscription created without id is assigned one (5.2.12: 'Generated at creation time, if it is not "
    "provided'), which can be retrieved.",
    feature=FEATURE,
    also=("5.2.12", "6.12.3.1"),
)
def create_without_id_assigns_one(k: Kit) -> None:
    body = _subscription(k)
    del body["id"]
    response = _post(k, body)
    k.expect_status(response, 201)
    location = response.headers.get("location", "")
    k.expect("/csourceSubscriptions/" in location, f"Location is {location!r}")
    path = location[location.index("/csourceSubscriptions/") :]
    k.delete_later(path)
    k.expect_status(k.http.get(path), 200)


@case(
    "6.12.3.1",
    "Creating a subscription whose id already exists is 409 AlreadyExists.",
    feature=FEATURE,
    also=("5.11.2", "6.3.2"),
)
def create_twice_is_409(k: Kit) -> None:
    body = _subscription(k)
    _subscribe(k, body)
    k.expect_problem(k.post(CSS, body), 409, "AlreadyExists")


@case(
    "5.11.4",
    "Retrieve answers the subscription as created: id, type Subscription, entities and notification endpoint.",
    feature=FEATURE,
    also=("6.13.3.1", "5.2.12"),
)
def retrieve_shows_the_subscription(k: Kit) -> None:
    body = _subscription(k, subscriptionName="city sources", description="every source of the city")
    got = _retrieved(k, _subscribe(k, body))
    k.expect(got.get("id") == body["id"] and got.get("type") == "Subscription", f"got {got!r:.300}")
    k.expect(got.get("entities") == body["entities"], f"entities are {got.get('entities')!r}")
    k.expect(got.get("subscriptionName") == "city sources", f"subscriptionName is {got.get('subscriptionName')!r}")
    uri = got.get("notification", {}).get("endpoint", {}).get("uri")
    k.expect(uri == UNUSED, f"notification.endpoint.uri is {uri!r}")


@case(
    "5.2.12",
    "A retrieved subscription has the read-only status 'active' (Table 5.2.12-2), 'paused' when isActive is false.",
    feature=FEATURE,
    also=("5.11.4",),
)
def status_active_or_paused(k: Kit) -> None:
    active = _retrieved(k, _subscribe(k, _subscription(k)))
    k.expect(active.get("status") == "active", f"status is {active.get('status')!r}")
    paused = _retrieved(k, _subscribe(k, _subscription(k, isActive=False)))
    k.expect(paused.get("status") == "paused", f"status of an inactive subscription is {paused.get('status')!r}")


@case(
    "5.11.4",
    "Retrieving an unknown subscription is 404 ResourceNotFound.",
    feature=FEATURE,
    also=("6.13.3.1",),
)
def retrieve_unknown_is_404(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSS), FEATURE)
    k.expect_problem(k.http.get(f"{CSS}/{k.uid('Subscription')}"), 404, "ResourceNotFound")


@case(
    "5.11.4",
    "Retrieving with an id that is not a valid URI is 400 BadRequestData.",
    feature=FEATURE,
    also=("6.13.3.1",),
)
def retrieve_invalid_id_is_400(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSS), FEATURE)
    k.expect_problem(k.http.get(f"{CSS}/not%20a%20uri"), 400, "BadRequestData")


@case(
    "5.11.5",
    "Query Context Source Registration Subscriptions lists the subscriptions created.",
    feature=FEATURE,
    also=("6.12.3.2",),
)
def query_lists_them(k: Kit) -> None:
    ids = {_subscribe(k, _subscription(k)) for _ in range(2)}
    listed = _all_listed(k)
    k.expect(ids <= listed, f"{sorted(ids - listed)} not listed")


def _all_listed(k: Kit) -> set[str]:
    found: set[str] = set()
    offset = 0
    while True:
        response = k.http.get(CSS, params={"limit": "50", "offset": str(offset)})
        k.expect_status(response, 200)
        page = k.json(response)
        k.expect(isinstance(page, list), "a query answers a JSON array")
        found |= {str(s.get("id")) for s in page}
        if len(page) < 50:
            return found
        offset += 50


@case(
    "5.11.5",
    "Query pages by limit (5.5.9): limit=1 answers one subscription and a Link to the next page.",
    feature=FEATURE,
    also=("6.12.3.2", "5.5.9"),
)
def query_pages_by_limit(k: Kit) -> None:
    for _ in range(2):
        _subscribe(k, _subscription(k))
    response = k.http.get(CSS, params={"limit": "1"})
    k.expect_status(response, 200)
    k.expect(len(k.json(response)) == 1, f"limit=1 answered {len(k.json(response))} subscriptions")
    links = response.headers.get_list("link")
    k.expect(any('rel="next"' in link for link in links), f"no Link rel=next: {links!r}")


@case(
    "5.11.5",
    "Query with count=true answers NGSILD-Results-Count, at least the number of subscriptions created.",
    feature=FEATURE,
    also=("6.12.3.2", "5.5.9"),
)
def query_counts(k: Kit) -> None:
    for _ in range(2):
        _subscribe(k, _subscription(k))
    response = k.http.get(CSS, params={"count": "true", "limit": "1"})
    k.expect_status(response, 200)
    count = response.headers.get("ngsild-results-count", "")
    k.expect(count.isdigit() and int(count) >= 2, f"NGSILD-Results-Count is {count!r}")


@case(
    "5.11.5",
    "Query with a limit that is not a positive number is 400 BadRequestData.",
    feature=FEATURE,
    also=("6.12.3.2", "5.5.9"),
)
def query_bad_limit_is_400(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSS), FEATURE)
    k.expect_problem(k.http.get(CSS, params={"limit": "-3"}), 400, "BadRequestData")


@case(
    "5.11.3",
    "Update answers 204 and changes the members of the fragment only.",
    feature=FEATURE,
    also=("6.13.3.2", "5.5.8"),
)
def update_changes_the_fragment(k: Kit) -> None:
    body = _subscription(k, description="before")
    sub_id = _subscribe(k, body)
    k.expect_status(k.patch(f"{CSS}/{sub_id}", {"description": "after"}), 204)
    got = _retrieved(k, sub_id)
    k.expect(got.get("description") == "after", f"description is {got.get('description')!r}")
    k.expect(got.get("entities") == body["entities"], f"entities changed to {got.get('entities')!r}")


@case(
    "5.11.3",
    "Updating an unknown subscription is 404 ResourceNotFound.",
    feature=FEATURE,
    also=("6.13.3.2",),
)
def update_unknown_is_404(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSS), FEATURE)
    k.expect_problem(k.patch(f"{CSS}/{k.uid('Subscription')}", {"description": "x"}), 404, "ResourceNotFound")


@case(
    "5.11.3",
    "An update whose fragment breaks clause 5.2.12 is 400 BadRequestData and changes nothing.",
    feature=FEATURE,
    also=("6.13.3.2", "5.2.12"),
)
def update_invalid_is_400(k: Kit) -> None:
    sub_id = _subscribe(k, _subscription(k))
    k.expect_problem(k.patch(f"{CSS}/{sub_id}", {"isActive": "no"}), 400, "BadRequestData")
    got = _retrieved(k, sub_id)
    k.expect(got.get("status") == "active" and got.get("isActive") in (None, True), f"changed: {got!r:.300}")


@case(
    "5.11.6",
    "Delete answers 204, then the subscription is not found (404).",
    feature=FEATURE,
    also=("6.13.3.3",),
)
def delete_then_404(k: Kit) -> None:
    sub_id = _subscribe(k, _subscription(k))
    k.expect_status(k.http.delete(f"{CSS}/{sub_id}"), 204)
    k.expect_problem(k.http.get(f"{CSS}/{sub_id}"), 404, "ResourceNotFound")


@case(
    "5.11.6",
    "Deleting an unknown subscription is 404 ResourceNotFound.",
    feature=FEATURE,
    also=("6.13.3.3",),
)
def delete_unknown_is_404(k: Kit) -> None:
    k.not_implemented_if(k.http.get(CSS), FEATURE)
    k.expect_problem(k.http.delete(f"{CSS}/{k.uid('Subscription')}"), 404, "ResourceNotFound")


@case(
    "5.11.2",
    "A context source registration subscription is not an entity subscription: it is not listed by /subscriptions.",
    feature=FEATURE,
    also=("6.10", "6.12"),
)
def apart_from_entity_subscriptions(k: Kit) -> None:
    sub_id = _subscribe(k, _subscription(k))
    k.expect_status(k.http.get(f"/subscriptions/{sub_id}"), 404)


# -- validation of each member (5.2.12, 5.11.2.3) --------------------------------------------------------------------
_invalid("refuses_other_type", "5.2.12", "type other than Subscription is BadRequestData.", "type",
         _set("type", "ContextSourceRegistration"))  # fmt: skip
_invalid("refuses_id_not_uri", "5.2.12", "An id that is not a URI is BadRequestData.", "id", _set("id", "not a uri"))
_invalid("refuses_missing_notification", "5.2.12", "A subscription without notification is BadRequestData.",
         "notification", _drop("notification"))  # fmt: skip
_invalid("refuses_missing_endpoint", "5.2.14", "notification without endpoint is BadRequestData.", "endpoint",
         lambda b: b["notification"].pop("endpoint"))  # fmt: skip
_invalid("refuses_endpoint_not_uri", "5.2.15", "An endpoint.uri that is not a URI is BadRequestData.", "uri",
         _endpoint(uri="not a uri"))  # fmt: skip
_invalid("refuses_empty_entities", "5.2.12", "entities as an empty array is BadRequestData ('Empty array (0 "
         "length) is not allowed').", "entities", _set("entities", []))  # fmt: skip
_invalid("refuses_selector_without_type", "5.2.33", "An EntitySelector without type is BadRequestData.", "type",
         _set("entities", [{"id": "urn:ngsi-ld:Thing:x"}]))  # fmt: skip
_invalid("refuses_empty_watched_attributes", "5.2.12", "watchedAttributes as an empty array is BadRequestData.",
         "watchedAttributes", _set("watchedAttributes", []))  # fmt: skip
_invalid("refuses_neither_entities_nor_watched", "5.2.12", "A subscription with neither entities nor "
         "watchedAttributes is BadRequestData ('At least one of (a) entities or (b) watchedAttributes shall be "
         "present').", "entities", _drop("entities"))  # fmt: skip
_invalid("refuses_time_interval_with_watched", "5.2.12", "timeInterval together with watchedAttributes is "
         "BadRequestData ('if watchedAttributes is present it shall not appear').", "timeInterval",
         lambda b: b.update(timeInterval=10, watchedAttributes=["speed"]))  # fmt: skip
_invalid("refuses_time_interval_not_positive", "5.2.12", "timeInterval not greater than 0 is BadRequestData.",
         "timeInterval", _set("timeInterval", -5))  # fmt: skip
_invalid("refuses_throttling_not_positive", "5.2.12", "throttling not greater than 0 is BadRequestData.",
         "throttling", _set("throttling", 0))  # fmt: skip
_invalid("refuses_is_active_not_boolean", "5.2.12", "isActive that is not a Boolean is BadRequestData.", "isActive",
         _set("isActive", "yes"))  # fmt: skip
_invalid("refuses_expires_at_not_datetime", "5.2.12", "expiresAt that is not a DateTime is BadRequestData.",
         "expiresAt", _set("expiresAt", "next week"))  # fmt: skip
_invalid("refuses_expires_at_in_the_past", "5.2.12", "An expiresAt already past is BadRequestData.", "expiresAt",
         _set("expiresAt", "2000-01-01T00:00:00Z"))  # fmt: skip
_invalid("refuses_invalid_q", "4.9", "A q that is not a valid query (clause 4.9) is BadRequestData.", "q",
         _set("q", "speed>>"))  # fmt: skip
_invalid("refuses_invalid_geoq", "5.2.13", "A geoQ with an unknown georel is BadRequestData.", "geo",
         _set("geoQ", {"georel": "nearby", "geometry": "Point", "coordinates": [2.35, 48.85]}))  # fmt: skip
_invalid("refuses_temporalq_bad_timerel", "5.2.21", "A temporalQ whose timerel is not before, after or between is "
         "BadRequestData.", "timerel",
         _set("temporalQ", {"timerel": "during", "timeAt": "2026-01-01T00:00:00Z"}))  # fmt: skip
_invalid("refuses_temporalq_without_time_at", "5.2.21", "A temporalQ without timeAt is BadRequestData.", "timeAt",
         _set("temporalQ", {"timerel": "after"}))  # fmt: skip
_invalid("refuses_invalid_csf", "4.9", "A csf that is not a valid query (clause 4.9) is BadRequestData.", "csf",
         _set("csf", "mode=="))  # fmt: skip


# -- notifications (5.11.7, 5.3.2, 5.3.3) ----------------------------------------------------------------------------
@case(
    "5.11.7",
    "On subscription, a CsourceNotification (id, type, subscriptionId, notifiedAt, data) carries the registrations "
    "already matching, newlyMatching.",
    feature=FEATURE,
    also=("5.3.2", "5.3.3", "5.11.2.4"),
)
def initial_notification(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    reg_id = _register(k, _registration(k, entity_type))
    url, path = k.receiver.endpoint()
    sub_id = _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    note = _notified(k, path, reg_id, "newlyMatching")
    k.expect(note.get("type") == "CsourceNotification", f"type is {note.get('type')!r}")
    k.expect(note.get("subscriptionId") == sub_id, f"subscriptionId is {note.get('subscriptionId')!r}")
    k.expect("id" in note and "notifiedAt" in note, f"notification is {note!r:.300}")
    reg = next(r for r in note["data"] if r.get("id") == reg_id)
    k.expect(reg.get("type") == "ContextSourceRegistration", f"data holds {reg!r:.300}")


@case(
    "5.3.3",
    "A new registration matching the subscription is notified with triggerReason newlyMatching.",
    feature=FEATURE,
    also=("5.11.7",),
)
def new_registration_newly_matching(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    reg_id = _register(k, _registration(k, entity_type))
    reg = next(r for r in _notified(k, path, reg_id, "newlyMatching")["data"] if r.get("id") == reg_id)
    k.expect(reg.get("endpoint") == "http://127.0.0.1:9/unused-context-source", f"data holds {reg!r:.300}")


@case(
    "5.3.3",
    "An update of a registration that still matches is notified with triggerReason updated.",
    feature=FEATURE,
    also=("5.11.7", "5.9.3"),
)
def updated_registration(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    reg_id = _register(k, _registration(k, entity_type))
    _notified(k, path, reg_id, "newlyMatching")
    k.expect_status(k.patch(f"{CSR}/{reg_id}", {"description": "moved to a new host"}), 204)
    _notified(k, path, reg_id, "updated")


@case(
    "5.3.3",
    "An update after which a registration no longer matches is notified with triggerReason noLongerMatching.",
    feature=FEATURE,
    also=("5.11.7", "5.9.3"),
)
def updated_out_of_the_subscription(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    reg_id = _register(k, _registration(k, entity_type))
    _notified(k, path, reg_id, "newlyMatching")
    info = [{"entities": [{"type": k.type_name("Other")}]}]
    k.expect_status(k.patch(f"{CSR}/{reg_id}", {"information": info}), 204)
    _notified(k, path, reg_id, "noLongerMatching")


@case(
    "5.3.3",
    "An update after which a registration newly matches is notified with triggerReason newlyMatching.",
    feature=FEATURE,
    also=("5.11.7", "5.9.3"),
)
def updated_into_the_subscription(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    reg_id = _register(k, _registration(k, k.type_name("Other")))
    k.expect_status(k.patch(f"{CSR}/{reg_id}", {"information": [{"entities": [{"type": entity_type}]}]}), 204)
    _notified(k, path, reg_id, "newlyMatching")


@case(
    "5.3.3",
    "Deleting a matching registration is notified with triggerReason noLongerMatching.",
    feature=FEATURE,
    also=("5.11.7", "5.9.4"),
)
def deleted_registration(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    reg_id = _register(k, _registration(k, entity_type))
    _notified(k, path, reg_id, "newlyMatching")
    k.expect_status(k.http.delete(f"{CSR}/{reg_id}"), 204)
    _notified(k, path, reg_id, "noLongerMatching")


@case(
    "5.12",
    "A registration of other entity types is not notified (a matching one made after it is, alone).",
    feature=FEATURE,
    also=("5.11.2.4",),
)
def other_types_not_notified(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    other = _register(k, _registration(k, k.type_name("Other")))
    matching = _register(k, _registration(k, entity_type))
    _notified(k, path, matching)
    k.expect(other not in _ids_notified(k, path), f"registration {other} of another type was notified")


@case(
    "5.12",
    "With watchedAttributes and notification.attributes, a registration of none of those attributes is not "
    "notified, one of them is.",
    feature=FEATURE,
    also=("5.11.2.4", "5.11.7"),
)
def attribute_names_select(k: Kit) -> None:
    entity_type, wanted = k.type_name("Vehicle"), k.attr_name("speed")
    url, path = k.receiver.endpoint()
    notification = {"attributes": [wanted], "endpoint": {"uri": url, "accept": JSON}}
    body = _subscription(k, url, entities=[{"type": entity_type}], watchedAttributes=[wanted])
    body["notification"] = notification
    _subscribe(k, body)
    info = [{"entities": [{"type": entity_type}], "propertyNames": [k.attr_name("other")]}]
    other = _register(k, _registration(k, entity_type, information=info))
    info = [{"entities": [{"type": entity_type}], "propertyNames": [wanted]}]
    matching = _register(k, _registration(k, entity_type, information=info))
    _notified(k, path, matching)
    k.expect(other not in _ids_notified(k, path), f"registration {other} of other attributes was notified")


@case(
    "5.12",
    "An EntitySelector with an id matches a registration of that entity id and not one of another id.",
    feature=FEATURE,
    also=("5.11.2.4",),
)
def entity_id_selects(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    wanted = k.uid(entity_type)
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type, "id": wanted}]))
    info = [{"entities": [{"type": entity_type, "id": k.uid(entity_type)}]}]
    other = _register(k, _registration(k, entity_type, information=info))
    info = [{"entities": [{"type": entity_type, "id": wanted}]}]
    matching = _register(k, _registration(k, entity_type, information=info))
    _notified(k, path, matching)
    k.expect(other not in _ids_notified(k, path), f"registration {other} of another entity id was notified")


@case(
    "5.11.1",
    "Without temporalQ only registrations of latest information (no observationInterval) match.",
    feature=FEATURE,
    also=("5.11.2.4",),
)
def temporal_registrations_need_temporal_q(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    interval = {"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"}
    history = _register(k, _registration(k, entity_type, observationInterval=interval))
    latest = _register(k, _registration(k, entity_type))
    _notified(k, path, latest)
    k.expect(history not in _ids_notified(k, path), f"registration {history} with observationInterval was notified")


@case(
    "5.11.2.4",
    "With temporalQ, a registration whose observationInterval matches is notified.",
    feature=FEATURE,
    also=("5.11.1", "5.2.21"),
)
def temporal_q_matches_observation_interval(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    when = {"timerel": "after", "timeAt": "2020-06-01T00:00:00Z"}
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}], temporalQ=when))
    interval = {"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"}
    history = _register(k, _registration(k, entity_type, observationInterval=interval))
    _notified(k, path, history, "newlyMatching")


@case(
    "5.11.2.4",
    "With geoQ, a registration whose location does not intersect the area is not notified, one whose location "
    "contains it is.",
    feature=FEATURE,
    also=("5.2.13", "4.10"),
)
def geo_q_selects(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    geo = {"georel": "intersects", "geometry": "Point", "coordinates": [2.35, 48.85]}
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}], geoQ=geo))
    far = {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}
    other = _register(k, _registration(k, entity_type, location=far))
    near = {"type": "Polygon", "coordinates": [[[2, 48], [3, 48], [3, 49], [2, 49], [2, 48]]]}
    matching = _register(k, _registration(k, entity_type, location=near))
    _notified(k, path, matching)
    k.expect(other not in _ids_notified(k, path), f"registration {other} far from the geoQ area was notified")


@case(
    "5.11.3.4",
    "After an update of the subscription, a notification carries every registration matching it now.",
    feature=FEATURE,
    also=("5.11.3", "6.13.3.2"),
)
def update_notifies_all_matching(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    reg_id = _register(k, _registration(k, entity_type))
    url, path = k.receiver.endpoint()
    sub_id = _subscribe(k, _subscription(k, url, entities=[{"type": k.type_name("Nothing")}]))
    k.expect_status(k.patch(f"{CSS}/{sub_id}", {"entities": [{"type": entity_type}]}), 204)
    _notified(k, path, reg_id, "newlyMatching")


@case(
    "5.8.6",
    "A paused subscription (isActive false) is not notified; resumed, it is told of what matches.",
    feature=FEATURE,
    also=("5.11.7", "5.2.12", "5.11.3.4"),
)
def paused_is_not_notified(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    sub_id = _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}], isActive=False))
    reg_id = _register(k, _registration(k, entity_type))
    k.wait_until(lambda: bool(_notes(k, path)), timeout=0.5)
    k.expect(not _notes(k, path), f"a paused subscription was notified: {_notes(k, path)!r:.300}")
    k.expect_status(k.patch(f"{CSS}/{sub_id}", {"isActive": True}), 204)
    _notified(k, path, reg_id)


@case(
    "5.11.7",
    "After a notification, the subscription shows notification.timesSent, lastNotification and lastSuccess, "
    "and status ok.",
    feature=FEATURE,
    also=("5.2.14", "5.8.6"),
)
def delivery_state_recorded(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    sub_id = _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    _notified(k, path, _register(k, _registration(k, entity_type)))

    def recorded() -> bool:
        note = _retrieved(k, sub_id).get("notification", {})
        return int(note.get("timesSent", 0)) >= 1 and "lastSuccess" in note

    k.expect(k.wait_until(recorded), f"delivery state is {_retrieved(k, sub_id).get('notification')!r:.300}")
    note = _retrieved(k, sub_id)["notification"]
    k.expect("lastNotification" in note and note.get("status") == "ok", f"notification is {note!r:.300}")


@case(
    "5.11.7",
    "A notification that is not delivered sets notification.lastFailure and the status 'failed'.",
    feature=FEATURE,
    also=("5.2.14", "5.8.6"),
)
def failed_delivery_recorded(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, _ = k.receiver.endpoint(failing=True)
    sub_id = _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    _register(k, _registration(k, entity_type))

    def failed() -> bool:
        note = _retrieved(k, sub_id).get("notification", {})
        return "lastFailure" in note and note.get("status") == "failed"

    k.expect(k.wait_until(failed, timeout=k.run.notify_timeout * 2), f"state is {_retrieved(k, sub_id)!r:.300}")


@case(
    "5.8.6",
    "With endpoint.accept application/ld+json, the CsourceNotification is JSON-LD with its @context in the body.",
    feature=FEATURE,
    also=("5.11.7", "5.2.15"),
)
def ld_json_notification(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    body = _subscription(k, url, entities=[{"type": entity_type}])
    body["notification"]["endpoint"]["accept"] = LD
    _subscribe(k, body)
    reg_id = _register(k, _registration(k, entity_type))
    _notified(k, path, reg_id)
    received: list[Received] = k.receiver.received(path)
    k.expect(received[0].headers.get("content-type", "").startswith(LD), f"headers {received[0].headers!r:.300}")
    k.expect("@context" in received[0].body, f"no @context in {received[0].body!r:.300}")


@case(
    "5.11.7",
    "A deleted subscription is notified no more.",
    feature=FEATURE,
    also=("5.11.6",),
)
def deleted_subscription_not_notified(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    sub_id = _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}]))
    k.expect_status(k.http.delete(f"{CSS}/{sub_id}"), 204)
    _register(k, _registration(k, entity_type))
    url2, path2 = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url2, entities=[{"type": entity_type}]))  # a live one, to know when to look
    k.wait_until(lambda: bool(_notes(k, path2)))
    k.expect(not _notes(k, path), f"a deleted subscription was notified: {_notes(k, path)!r:.300}")


@case(
    "5.11.2.4",
    "With scopeQ (clause 4.19), a registration whose scope does not match is not notified, one whose scope does is.",
    feature=FEATURE,
    also=("4.19",),
)
def scope_q_selects(k: Kit) -> None:
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    _subscribe(k, _subscription(k, url, entities=[{"type": entity_type}], scopeQ="/city/north"))
    other = _register(k, _registration(k, entity_type, scope="/harbour"))
    matching = _register(k, _registration(k, entity_type, scope="/city/north"))
    _notified(k, path, matching)
    k.expect(other not in _ids_notified(k, path), f"registration {other} of another scope was notified")


@case(
    "4.14",
    "A subscription made in a tenant is told of that tenant's registrations only, and is not seen from another.",
    feature=FEATURE,
    also=("5.11.7", "5.11.4"),
)
def notifications_stay_in_their_tenant(k: Kit) -> None:
    tenant = {"NGSILD-Tenant": f"conformance{k.run.run_id}t{k.run.next_number()}"}
    entity_type = k.type_name("Vehicle")
    url, path = k.receiver.endpoint()
    body = _subscription(k, url, entities=[{"type": entity_type}])
    response = k.post(CSS, body, headers=tenant)
    if response.status_code == 501:
        k.missing("tenancy", "the broker answered 501 to NGSILD-Tenant")
    k.not_implemented_if(response, FEATURE)
    k.expect_status(response, 201)
    k.delete_later(f"{CSS}/{body['id']}", headers=tenant)
    k.expect_status(k.http.get(f"{CSS}/{body['id']}"), 404)
    elsewhere = _register(k, _registration(k, entity_type))
    mine = _registration(k, entity_type)
    k.expect_status(k.post(CSR, mine, headers=tenant), 201)
    k.delete_later(f"{CSR}/{mine['id']}", headers=tenant)
    _notified(k, path, str(mine["id"]), "newlyMatching")
    k.expect(elsewhere not in _ids_notified(k, path), f"registration {elsewhere} of another tenant was notified")
