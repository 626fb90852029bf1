"""Subscriptions (clauses 5.8.1-5.8.5, data type 5.2.12, NotificationParams 5.2.15; HTTP binding 6.10, 6.11) and
notifications (5.8.6) delivered to the kit's HTTP receiver, or over MQTT (clause 7) when --mqtt is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.cases._shared import point, prop, rel, vehicle
from conformance.helpers import Received
from conformance.kit import JSON, LD_JSON, Kit, case


def subscription(k: Kit, uri: str, entity_type: str, **extra: Any) -> dict[str, Any]:
    notification = {"endpoint": {"uri": uri, "accept": JSON}, **extra.pop("notification", {})}
    return {
        "id": k.uid("Subscription"),
        "type": "Subscription",
        "entities": [{"type": entity_type}],
        "notification": notification,
        **extra,
    }


def subscribe(k: Kit, body: dict[str, Any]) -> str:
    """Create the subscription (201 expected) and delete it after the case; return its id."""
    response = k.post("/subscriptions", body)
    k.not_implemented_if(response, "subscriptions")
    k.expect_status(response, 201)
    k.delete_later(f"/subscriptions/{body['id']}")
    return str(body["id"])


def notifications_about(k: Kit, path: str, entity_id: str, count: int = 1) -> list[Received]:
    """Wait for `count` notifications mentioning entity_id on the receiver path; fail when they do not come."""

    def matching() -> list[Received]:
        return [r for r in k.receiver.received(path) if entity_id in _data_ids(r.body)]

    k.wait_until(lambda: len(matching()) >= count)
    found = matching()
    k.expect(
        len(found) >= count,
        f"{len(found)} notification(s) about {entity_id} within {k.run.notify_timeout} s, expected {count}",
    )
    return found


def _data_ids(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    return [str(e.get("id")) for e in body.get("data", []) if isinstance(e, dict)]


def _entity_in(notification: Received, entity_id: str) -> dict[str, Any]:
    return next(e for e in notification.body["data"] if e.get("id") == entity_id)


@case(
    "6.10",
    "The Subscription List answers at /subscriptions/, its resource URI as Table 6.2-1 writes it: POST creates and "
    "GET lists, with no redirect.",
    feature="subscriptions",
    also=("5.8.1", "5.8.4"),
)
def subscription_list_uri_with_its_trailing_slash(k: Kit) -> None:
    body = subscription(k, "http://127.0.0.1:9/unused", k.type_name())
    response = k.post("/subscriptions/", body)
    k.not_implemented_if(response, "subscriptions")
    k.expect_status(response, 201)
    k.delete_later(f"/subscriptions/{body['id']}")
    listed = k.http.get("/subscriptions/", params={"limit": "100"})
    k.expect_status(listed, 200)
    ids = [s.get("id") for s in k.json(listed)]
    k.expect(body["id"] in ids, f"GET /subscriptions/ does not list {body['id']}")


@case(
    "5.8.1",
    "Create Subscription answers 201 with a Location, and Retrieve Subscription gives it back.",
    feature="subscriptions",
    also=("6.10", "6.11", "5.8.3", "5.2.12"),
)
def create_and_retrieve(k: Kit) -> None:
    entity_type = k.type_name()
    body = subscription(k, "http://127.0.0.1:9/unused", entity_type, watchedAttributes=["speed"])
    response = k.post("/subscriptions", body)
    k.not_implemented_if(response, "subscriptions")
    k.expect_status(response, 201)
    k.delete_later(f"/subscriptions/{body['id']}")
    k.expect(str(body["id"]) in response.headers.get("location", ""), "Location does not name the subscription")
    got = k.http.get(f"/subscriptions/{body['id']}")
    k.expect_status(got, 200)
    sub = k.json(got)
    k.expect(sub.get("id") == body["id"] and sub.get("type") == "Subscription", f"got {sub!r:.300}")
    selectors = sub.get("entities")
    k.expect(
        isinstance(selectors, list) and [s.get("type") for s in selectors] == [entity_type],
        f"entities are {selectors!r}",
    )
    k.expect(sub.get("watchedAttributes") == ["speed"], f"watchedAttributes are {sub.get('watchedAttributes')!r}")
    endpoint = sub.get("notification", {}).get("endpoint", {})
    k.expect(endpoint.get("uri") == body["notification"]["endpoint"]["uri"], f"endpoint is {endpoint!r}")


@case(
    "5.8.1",
    "Creating a subscription with an existing id is an AlreadyExists error (409).",
    feature="subscriptions",
    also=("6.10",),
)
def create_existing_is_409(k: Kit) -> None:
    body = subscription(k, "http://127.0.0.1:9/unused", k.type_name())
    subscribe(k, body)
    k.expect_problem(k.post("/subscriptions", body), 409, "AlreadyExists")


@case(
    "5.2.12",
    "A subscription without notification parameters is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.8.1", "6.10"),
)
def create_without_notification_is_400(k: Kit) -> None:
    body = subscription(k, "http://127.0.0.1:9/unused", k.type_name())
    del body["notification"]
    k.delete_later(f"/subscriptions/{body['id']}")
    k.expect_problem(k.post("/subscriptions", body), 400, "BadRequestData")


@case(
    "5.2.12",
    "A subscription with neither entities nor watchedAttributes is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.8.1",),
)
def create_without_entities_or_watched_is_400(k: Kit) -> None:
    body = subscription(k, "http://127.0.0.1:9/unused", k.type_name())
    del body["entities"]
    k.delete_later(f"/subscriptions/{body['id']}")
    k.expect_problem(k.post("/subscriptions", body), 400, "BadRequestData")


@case(
    "5.8.4",
    "Query Subscriptions lists the subscriptions, including a new one.",
    feature="subscriptions",
    also=("6.10",),
)
def query_subscriptions(k: Kit) -> None:
    sub_id = subscribe(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name()))
    seen: list[Any] = []
    offset = 0
    while True:  # page through: a shared broker may hold many subscriptions
        response = k.http.get("/subscriptions", params={"limit": "100", "offset": str(offset)})
        k.expect_status(response, 200)
        page = k.json(response)
        k.expect(isinstance(page, list), "Query Subscriptions does not answer an array")
        seen += page
        if len(page) < 100 or offset > 10_000:
            break
        offset += 100
    k.expect(any(isinstance(s, dict) and s.get("id") == sub_id for s in seen), f"{sub_id} not listed")


@case(
    "5.8.2",
    "Update Subscription answers 204 and the change shows on retrieval.",
    feature="subscriptions",
    also=("6.11",),
)
def update_subscription(k: Kit) -> None:
    sub_id = subscribe(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name()))
    k.expect_status(k.patch(f"/subscriptions/{sub_id}", {"subscriptionName": "renamed", "throttling": 5}), 204)
    sub = k.json(k.http.get(f"/subscriptions/{sub_id}"))
    k.expect(sub.get("subscriptionName") == "renamed" and sub.get("throttling") == 5, f"got {sub!r:.300}")


@case(
    "5.8.5",
    "Delete Subscription answers 204, and the subscription is then a ResourceNotFound (404).",
    feature="subscriptions",
    also=("6.11",),
)
def delete_subscription(k: Kit) -> None:
    sub_id = subscribe(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name()))
    k.expect_status(k.http.delete(f"/subscriptions/{sub_id}"), 204)
    k.expect_problem(k.http.get(f"/subscriptions/{sub_id}"), 404, "ResourceNotFound")


@case(
    "5.8.3",
    "Retrieving an unknown subscription is a ResourceNotFound error (404).",
    feature="subscriptions",
    also=("6.11",),
)
def retrieve_unknown_is_404(k: Kit) -> None:
    k.expect_problem(k.http.get(f"/subscriptions/{k.uid('Subscription')}"), 404, "ResourceNotFound")


@case(
    "5.2.12", "isActive=false pauses a subscription: its status reads paused.", feature="subscriptions", also=("5.8.2",)
)
def paused_subscription_status(k: Kit) -> None:
    sub_id = subscribe(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name(), isActive=False))
    sub = k.json(k.http.get(f"/subscriptions/{sub_id}"))
    k.expect(sub.get("status") == "paused", f"status is {sub.get('status')!r}, expected paused")


@case(
    "5.8.6",
    "A matching change is notified with a Notification {id, type, subscriptionId, notifiedAt, data}.",
    feature="notifications",
    also=("6.10", "5.3.1"),
)
def notification_on_creation(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    sub_id = subscribe(k, subscription(k, url, entity_type))
    body = vehicle(k, entity_type)
    k.entity(body)
    note = notifications_about(k, path, body["id"])[0].body
    k.expect(note.get("type") == "Notification" and "id" in note, f"notification is {note!r:.300}")
    k.expect(note.get("subscriptionId") == sub_id, f"subscriptionId is {note.get('subscriptionId')!r}")
    k.expect("notifiedAt" in note, "notification without notifiedAt")
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("speed", {}).get("value") == 80, f"notified entity is {entity!r:.300}")


@case(
    "5.8.6",
    "An update of a watched attribute is notified with the new value.",
    feature="notifications",
    also=("5.2.12",),
)
def notification_on_update(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], watchedAttributes=["speed"]))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(120)}), 204)

    def with_new_speed() -> bool:
        return any(
            _entity_in(r, body["id"]).get("speed", {}).get("value") == 120
            for r in k.receiver.received(path)
            if body["id"] in _data_ids(r.body)
        )

    k.expect(k.wait_until(with_new_speed), "no notification with speed 120")


@case("5.2.12", "A subscription's q filters what is notified.", feature="notifications", also=("4.9", "5.8.6"))
def notification_q_filter(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, q="speed>100"))
    slow, fast = vehicle(k, entity_type, speed=prop(50)), vehicle(k, entity_type, speed=prop(150))
    k.entity(slow)
    k.entity(fast)
    notifications_about(k, path, fast["id"])
    k.expect(
        not any(slow["id"] in _data_ids(r.body) for r in k.receiver.received(path)),
        "the entity with speed 50 was notified although q=speed>100",
    )


@case(
    "5.2.14",
    "notification.format=keyValues notifies entities in the simplified representation.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_key_values(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, notification={"format": "keyValues"}))
    body = vehicle(k, entity_type)
    k.entity(body)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("speed") == 80, f"keyValues speed is {entity.get('speed')!r}")


@case(
    "5.2.14",
    "notification.attributes limits the notified entity to those attributes.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_attributes(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, notification={"attributes": ["speed"]}))
    body = vehicle(k, entity_type)
    k.entity(body)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(
        "speed" in entity and "location" not in entity and "isParked" not in entity,
        f"notified members are {sorted(entity)}",
    )


@case(
    "5.2.15",
    "endpoint.receiverInfo entries are sent as HTTP headers of the notification.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_receiver_info(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    endpoint = {"uri": url, "accept": JSON, "receiverInfo": [{"key": "X-Conformance-Run", "value": k.run.run_id}]}
    subscribe(k, subscription(k, url, entity_type, notification={"endpoint": endpoint}))
    body = vehicle(k, entity_type)
    k.entity(body)
    got = notifications_about(k, path, body["id"])[0]
    k.expect(got.headers.get("x-conformance-run") == k.run.run_id, f"headers are {got.headers}")


@case(
    "5.8.6",
    "Notifications are JSON by default (endpoint accept application/json), without @context in the body.",
    feature="notifications",
    also=("5.2.15",),
)
def notification_json(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type))
    body = vehicle(k, entity_type)
    k.entity(body)
    got = notifications_about(k, path, body["id"])[0]
    k.expect(got.headers.get("content-type", "").startswith(JSON), f"Content-Type {got.headers.get('content-type')}")
    k.expect("@context" not in got.body, "@context in an application/json notification")


@case(
    "5.8.6",
    "Notifications with endpoint accept application/ld+json carry the @context in the body.",
    feature="notifications",
    also=("6.3.6",),
)
def notification_ld_json(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, notification={"endpoint": {"uri": url, "accept": LD_JSON}}))
    body = vehicle(k, entity_type)
    k.entity(body)
    got = notifications_about(k, path, body["id"])[0]
    k.expect(got.headers.get("content-type", "").startswith(LD_JSON), f"Content-Type {got.headers.get('content-type')}")
    k.expect("@context" in got.body, "no @context in an application/ld+json notification")


@case(
    "5.2.12",
    "After a notification, the subscription shows timesSent, lastNotification, lastSuccess and status ok.",
    feature="notifications",
    also=("5.2.14",),
)
def notification_status_after_success(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    sub_id = subscribe(k, subscription(k, url, entity_type))
    body = vehicle(k, entity_type)
    k.entity(body)
    notifications_about(k, path, body["id"])

    def recorded() -> dict[str, Any]:
        return dict(k.json(k.http.get(f"/subscriptions/{sub_id}")).get("notification", {}))

    k.wait_until(lambda: "lastSuccess" in recorded(), 2.0)
    params = recorded()
    k.expect(isinstance(params.get("timesSent"), int) and params["timesSent"] >= 1, f"timesSent {params}")
    k.expect("lastNotification" in params and "lastSuccess" in params, f"notification params are {params}")
    k.expect(params.get("status") == "ok", f"notification status is {params.get('status')!r}")


@case(
    "5.2.14",
    "A notification the endpoint refuses shows as status failed, with lastFailure.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_status_after_failure(k: Kit) -> None:
    url, path = k.receiver.endpoint(failing=True)
    entity_type = k.type_name()
    sub_id = subscribe(k, subscription(k, url, entity_type))
    body = vehicle(k, entity_type)
    k.entity(body)
    notifications_about(k, path, body["id"])

    def failed() -> bool:
        params = k.json(k.http.get(f"/subscriptions/{sub_id}")).get("notification", {})
        return bool(params.get("status") == "failed" and "lastFailure" in params)

    k.expect(k.wait_until(failed), "the subscription never showed status failed with lastFailure")


@case(
    "5.2.12",
    "watchedAttributes alone (no entities) selects any entity that changes one of them.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_watched_attributes_only(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    attr = k.attr_name("watched")
    body = subscription(k, url, "unused", watchedAttributes=[attr])
    del body["entities"]
    subscribe(k, body)
    entity = vehicle(k)
    k.entity(entity)
    k.expect_status(k.post(f"/entities/{entity['id']}/attrs", {attr: prop(1)}), 204)
    notifications_about(k, path, entity["id"])


@case(
    "5.2.12",
    "notificationTrigger entityDeleted notifies the deletion of an entity.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_entity_deleted(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["entityDeleted"]))
    k.expect_status(k.http.delete(f"/entities/{body['id']}"), 204)
    notifications_about(k, path, body["id"])


@case(
    "7",
    "A subscription whose endpoint is an mqtt:// URI publishes its notifications on that topic.",
    feature="mqtt",
    also=("5.8.6", "5.2.15"),
)
def mqtt_notification(k: Kit) -> None:
    listener, endpoint = k.mqtt, k.run.mqtt_endpoint
    topic = listener.topic()
    entity_type = k.type_name()
    uri = f"{str(endpoint).rstrip('/')}/{topic}"
    subscribe(k, subscription(k, uri, entity_type))
    body = vehicle(k, entity_type)
    k.entity(body)

    def notified() -> list[Any]:
        # MQTT 5 carries the Notification as the payload; MQTT 3.1.1 wraps it as {metadata, body}
        return [m.payload.get("body", m.payload) for m in listener.messages(topic) if isinstance(m.payload, dict)]

    k.expect(
        k.wait_until(lambda: any(body["id"] in _data_ids(n) for n in notified())),
        f"no MQTT notification on {topic} within {k.run.notify_timeout} s",
    )
    note = next(n for n in notified() if body["id"] in _data_ids(n))
    k.expect(note.get("type") == "Notification", f"MQTT notification is {note!r:.300}")


@case(
    "5.2.14",
    "notification.pick and notification.omit project the notified entities.",
    feature="notifications",
    also=("4.21", "5.8.6"),
)
def notification_pick_omit(k: Kit) -> None:
    entity_type = k.type_name()
    picked_url, picked_path = k.receiver.endpoint()
    omitted_url, omitted_path = k.receiver.endpoint()
    subscribe(k, subscription(k, picked_url, entity_type, notification={"pick": ["id", "speed"]}))
    subscribe(k, subscription(k, omitted_url, entity_type, notification={"omit": ["speed"]}))
    body = vehicle(k, entity_type)
    k.entity(body)
    picked = _entity_in(notifications_about(k, picked_path, body["id"])[0], body["id"])
    k.expect(set(picked) - {"@context"} == {"id", "speed"}, f"picked members are {sorted(picked)}")
    omitted = _entity_in(notifications_about(k, omitted_path, body["id"])[0], body["id"])
    k.expect("speed" not in omitted and "location" in omitted, f"omitted members are {sorted(omitted)}")


@case(
    "5.2.14",
    "notification.showChanges adds previousValue to a changed Property.",
    feature="notifications",
    also=("5.8.6",),
)
def notification_show_changes(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], watchedAttributes=["speed"], notification={"showChanges": True}))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(81)}), 204)

    def with_previous() -> bool:
        return any(
            _entity_in(r, body["id"]).get("speed", {}).get("previousValue") == 80
            for r in k.receiver.received(path)
            if body["id"] in _data_ids(r.body)
        )

    k.expect(k.wait_until(with_previous), "no notification with speed.previousValue 80")


@case(
    "5.2.14",
    "notification.sysAttrs adds createdAt and modifiedAt to the notified entities.",
    feature="notifications",
    also=("4.8", "5.8.6"),
)
def notification_sys_attrs(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, notification={"sysAttrs": True}))
    body = vehicle(k, entity_type)
    k.entity(body)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect("createdAt" in entity and "modifiedAt" in entity, f"notified members are {sorted(entity)}")


@case("5.2.12", "A subscription's geoQ filters what is notified.", feature="notifications", also=("4.10", "5.8.6"))
def notification_geo_filter(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    geo = {"geometry": "Point", "coordinates": [4.8357, 45.764], "georel": "near;maxDistance==2000"}
    subscribe(k, subscription(k, url, entity_type, geoQ=geo))
    far = vehicle(
        k, entity_type, location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}}
    )
    near = vehicle(k, entity_type)
    k.entity(far)
    k.entity(near)
    notifications_about(k, path, near["id"])
    k.expect(
        not any(far["id"] in _data_ids(r.body) for r in k.receiver.received(path)),
        "an entity 400 km away was notified although geoQ says near;maxDistance==2000",
    )


@case(
    "5.8.6",
    "A paused subscription notifies nothing; once reactivated it notifies again.",
    feature="notifications",
    also=("5.2.12", "5.8.2"),
)
def paused_subscription_is_silent(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    sub_id = subscribe(k, subscription(k, url, entity_type, isActive=False))
    silent = vehicle(k, entity_type)
    k.entity(silent)
    # give the broker time to process the change while the subscription is still paused
    k.wait_until(lambda: bool(k.receiver.received(path)), 1.0)
    k.expect_status(k.patch(f"/subscriptions/{sub_id}", {"isActive": True}), 204)
    heard = vehicle(k, entity_type)
    k.entity(heard)
    notifications_about(k, path, heard["id"])
    k.expect(
        not any(silent["id"] in _data_ids(r.body) for r in k.receiver.received(path)),
        "an entity created while the subscription was paused was notified",
    )


@case(
    "5.8.6",
    "A deleted attribute is notified as the attribute name with the value urn:ngsi-ld:null.",
    feature="notifications",
    also=("5.2.12",),
)
def notification_attribute_deleted(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["attributeDeleted"]))
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/speed"), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    speed = entity.get("speed")
    k.expect(
        speed == "urn:ngsi-ld:null" or (isinstance(speed, dict) and speed.get("value") == "urn:ngsi-ld:null"),
        f"the deleted attribute is notified as {speed!r}",
    )


@case(
    "5.8.6",
    "The deletion of an entity is notified with its deletedAt system property.",
    feature="notifications",
    also=("5.2.12", "4.8"),
)
def notification_entity_deleted_has_deleted_at(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["entityDeleted"]))
    k.expect_status(k.http.delete(f"/entities/{body['id']}"), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect("deletedAt" in entity, f"notified members are {sorted(entity)}")


@case(
    "5.8.6",
    "A subscription with timeInterval notifies its matching entities periodically, without changes.",
    feature="notifications",
    also=("5.2.12",),
)
def periodic_notification(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], timeInterval=1))
    notifications_about(k, path, body["id"], count=2)


def _expect_refused(k: Kit, body: dict[str, Any]) -> None:
    k.delete_later(f"/subscriptions/{body['id']}")  # in case the broker wrongly creates it
    response = k.post("/subscriptions", body)
    k.not_implemented_if(response, "subscriptions")
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.2.12",
    "A subscription with both timeInterval and watchedAttributes is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.8.1",),
)
def time_interval_with_watched_attributes_is_400(k: Kit) -> None:
    _expect_refused(
        k, subscription(k, "http://127.0.0.1:9/unused", k.type_name(), timeInterval=10, watchedAttributes=["speed"])
    )


@case(
    "5.2.12",
    "A subscription with an empty watchedAttributes array is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.8.1",),
)
def empty_watched_attributes_is_400(k: Kit) -> None:
    _expect_refused(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name(), watchedAttributes=[]))


@case(
    "5.2.12",
    "A subscription whose q is not a valid query is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.8.1", "4.9"),
)
def invalid_q_is_400(k: Kit) -> None:
    _expect_refused(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name(), q="speed>>>1"))


@case(
    "5.2.12",
    "Read-only members given on creation (status) are ignored: the new subscription is active.",
    feature="subscriptions",
    also=("5.8.1",),
)
def read_only_members_are_ignored(k: Kit) -> None:
    sub_id = subscribe(k, subscription(k, "http://127.0.0.1:9/unused", k.type_name(), status="expired"))
    sub = k.json(k.http.get(f"/subscriptions/{sub_id}"))
    k.expect(sub.get("status") == "active", f"status is {sub.get('status')!r}, expected active")


@case(
    "5.8.2",
    "Updating an unknown subscription is a ResourceNotFound error (404).",
    feature="subscriptions",
    also=("6.11",),
)
def update_unknown_is_404(k: Kit) -> None:
    response = k.patch(f"/subscriptions/{k.uid('Subscription')}", {"subscriptionName": "x"})
    k.expect_problem(response, 404, "ResourceNotFound")


# -- the Subscription data type (clause 5.2.12), member by member -------------------------------------------------
UNUSED = "http://127.0.0.1:9/unused"


def _unused(k: Kit, **extra: Any) -> dict[str, Any]:
    return subscription(k, UNUSED, k.type_name(), **extra)


def _retrieved(k: Kit, sub_id: str, **params: str) -> dict[str, Any]:
    response = k.http.get(f"/subscriptions/{sub_id}", params=params)
    k.expect_status(response, 200)
    body = k.json(response)
    k.expect(isinstance(body, dict), "a subscription is a JSON object")
    return dict(body)


@case(
    "5.2.12",
    "A subscription without id gets one generated at creation, named by the Location header.",
    feature="subscriptions",
    also=("5.8.1", "6.10"),
)
def create_without_id_generates_one(k: Kit) -> None:
    body = _unused(k)
    del body["id"]
    response = k.post("/subscriptions", body)
    k.not_implemented_if(response, "subscriptions")
    k.expect_status(response, 201)
    location = str(response.headers.get("location", ""))
    k.expect("/subscriptions/" in location, f"Location is {location!r}")
    path = "/subscriptions/" + location.split("/subscriptions/", 1)[1]
    k.delete_later(path)
    got = k.http.get(path)
    k.expect_status(got, 200)
    sub_id = k.json(got).get("id")
    k.expect(isinstance(sub_id, str) and ":" in sub_id, f"the generated id {sub_id!r} is not a URI")


@case(
    "5.2.12", "A subscription whose type is not Subscription is a BadRequestData error (400).", feature="subscriptions"
)
def wrong_type_is_400(k: Kit) -> None:
    _expect_refused(k, {**_unused(k), "type": "Registration"})


@case("5.2.12", "A subscription with an empty entities array is a BadRequestData error (400).", feature="subscriptions")
def empty_entities_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, entities=[]))


@case(
    "5.2.12",
    "An EntitySelector without type is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.2.33", "5.8.1"),
)
def selector_without_type_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, entities=[{"id": k.uid()}]))


@case(
    "5.2.12",
    "A notificationTrigger outside the six valid triggers is a BadRequestData error (400).",
    feature="subscriptions",
)
def invalid_trigger_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, notificationTrigger=["entityChanged"]))


@case(
    "5.2.12", "A throttling of 0 (it shall be greater than 0) is a BadRequestData error (400).", feature="subscriptions"
)
def zero_throttling_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, throttling=0))


@case(
    "5.2.12",
    "A timeInterval of 0 (it shall be greater than 0) is a BadRequestData error (400).",
    feature="subscriptions",
)
def zero_time_interval_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, timeInterval=0))


@case(
    "5.2.12",
    "A subscription with both timeInterval and throttling is a BadRequestData error (400).",
    feature="subscriptions",
)
def time_interval_with_throttling_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, timeInterval=10, throttling=5))


@case("5.2.12", "An expiresAt that is not a DateTime is a BadRequestData error (400).", feature="subscriptions")
def expires_at_not_a_date_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, expiresAt="next tuesday"))


@case("5.2.12", "An isActive that is not a Boolean is a BadRequestData error (400).", feature="subscriptions")
def is_active_not_boolean_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, isActive="yes"))


@case(
    "5.2.14",
    "A notification.format other than normalized, concise, simplified or keyValues is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.2.12",),
)
def invalid_format_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, notification={"format": "verbose"}))


@case(
    "5.2.14",
    "Notification parameters without an endpoint are a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.2.15",),
)
def notification_without_endpoint_is_400(k: Kit) -> None:
    body = _unused(k)
    body["notification"] = {"format": "normalized"}
    _expect_refused(k, body)


@case(
    "5.2.15",
    "An endpoint uri that is not a URI is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.2.14",),
)
def endpoint_not_a_uri_is_400(k: Kit) -> None:
    body = _unused(k)
    body["notification"] = {"endpoint": {"uri": "not a uri"}}
    _expect_refused(k, body)


@case(
    "5.2.14",
    "An empty notification.attributes array is a BadRequestData error (400).",
    feature="subscriptions",
)
def empty_notification_attributes_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, notification={"attributes": []}))


@case(
    "5.2.12",
    "isActive written false on creation is retrieved false, with status paused.",
    feature="subscriptions",
    also=("5.8.3",),
)
def is_active_false_is_kept(k: Kit) -> None:
    sub = _retrieved(k, subscribe(k, _unused(k, isActive=False)))
    k.expect(sub.get("isActive") is False, f"isActive is {sub.get('isActive')!r}, expected false")
    k.expect(sub.get("status") == "paused", f"status is {sub.get('status')!r}, expected paused")


@case(
    "5.2.12",
    "A retrieved subscription carries the read-only status member, active for a new subscription.",
    feature="subscriptions",
    also=("5.8.3",),
)
def new_subscription_is_active(k: Kit) -> None:
    sub = _retrieved(k, subscribe(k, _unused(k)))
    k.expect(sub.get("status") == "active", f"status is {sub.get('status')!r}, expected active")


@case(
    "5.2.12",
    "A subscription whose expiresAt has passed has the status expired.",
    feature="subscriptions",
    also=("5.8.6",),
)
def expired_subscription_status(k: Kit) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sub_id = subscribe(k, _unused(k, expiresAt=soon))
    k.expect(
        k.wait_until(lambda: _retrieved(k, sub_id).get("status") == "expired", 6.0),
        f"status is {_retrieved(k, sub_id).get('status')!r} after expiresAt passed",
    )


@case(
    "5.8.3",
    "Retrieving a subscription by an id that is not a URI is a BadRequestData error (400).",
    feature="subscriptions",
    also=("6.11",),
)
def retrieve_invalid_id_is_400(k: Kit) -> None:
    k.expect_problem(k.http.get("/subscriptions/not-a-uri"), 400, "BadRequestData")


@case(
    "5.8.5",
    "Deleting an unknown subscription is a ResourceNotFound error (404).",
    feature="subscriptions",
    also=("6.11",),
)
def delete_unknown_is_404(k: Kit) -> None:
    k.expect_problem(k.http.delete(f"/subscriptions/{k.uid('Subscription')}"), 404, "ResourceNotFound")


@case(
    "5.8.4",
    "Query Subscriptions answers at most limit subscriptions.",
    feature="subscriptions",
    also=("6.10", "5.5.9"),
)
def query_subscriptions_limit(k: Kit) -> None:
    subscribe(k, _unused(k))
    subscribe(k, _unused(k))
    response = k.http.get("/subscriptions", params={"limit": "1"})
    k.expect_status(response, 200)
    page = k.json(response)
    k.expect(isinstance(page, list) and len(page) == 1, f"limit=1 answered {len(page)} subscriptions")


@case(
    "5.5.9",
    "Query Subscriptions pages with a Link header rel=next while more subscriptions follow.",
    feature="subscriptions",
    also=("5.8.4", "6.10"),
)
def query_subscriptions_next_link(k: Kit) -> None:
    subscribe(k, _unused(k))
    subscribe(k, _unused(k))
    response = k.http.get("/subscriptions", params={"limit": "1"})
    k.expect_status(response, 200)
    links = response.headers.get_list("link")
    k.expect(any('rel="next"' in link for link in links), f"Link headers are {links!r}")


@case(
    "6.10",
    "Query Subscriptions with count=true answers the total in NGSILD-Results-Count.",
    feature="subscriptions",
    also=("5.8.4",),
)
def query_subscriptions_count(k: Kit) -> None:
    subscribe(k, _unused(k))
    response = k.http.get("/subscriptions", params={"limit": "1", "count": "true"})
    k.expect_status(response, 200)
    count = response.headers.get("NGSILD-Results-Count", "")
    k.expect(count.isdigit() and int(count) >= 1, f"NGSILD-Results-Count is {count!r}")


@case(
    "5.8.4",
    "Every subscription of Query Subscriptions carries its status.",
    feature="subscriptions",
    also=("5.2.12", "6.10"),
)
def query_subscriptions_status(k: Kit) -> None:
    sub_id = subscribe(k, _unused(k, isActive=False))
    response = k.http.get("/subscriptions", params={"limit": "1000"})
    k.expect_status(response, 200)
    mine = [s for s in k.json(response) if isinstance(s, dict) and s.get("id") == sub_id]
    k.expect(len(mine) == 1 and mine[0].get("status") == "paused", f"listed as {mine!r:.300}")


# -- Update Subscription (clause 5.8.2) ---------------------------------------------------------------------------
@case(
    "5.8.2",
    "An update whose expiresAt is in the past is a BadRequestData error (400), whatever isActive says.",
    feature="subscriptions",
    also=("6.11",),
)
def update_expires_at_in_past_is_400(k: Kit) -> None:
    sub_id = subscribe(k, _unused(k))
    fragment = {"expiresAt": "2001-01-01T00:00:00Z", "isActive": True}
    k.expect_problem(k.patch(f"/subscriptions/{sub_id}", fragment), 400, "BadRequestData")
    k.expect("expiresAt" not in _retrieved(k, sub_id), "the refused expiresAt was stored")


@case(
    "5.8.2",
    "An update with an expiresAt in the future is stored and the subscription stays active.",
    feature="subscriptions",
    also=("6.11", "5.2.12"),
)
def update_expires_at_in_future(k: Kit) -> None:
    sub_id = subscribe(k, _unused(k))
    k.expect_status(k.patch(f"/subscriptions/{sub_id}", {"expiresAt": "2999-01-01T00:00:00Z"}), 204)
    sub = _retrieved(k, sub_id)
    k.expect(str(sub.get("expiresAt", "")).startswith("2999-01-01"), f"expiresAt is {sub.get('expiresAt')!r}")
    k.expect(sub.get("status") == "active", f"status is {sub.get('status')!r}")


@case(
    "5.8.2",
    "An update with isActive false pauses the subscription and isActive true makes it active again.",
    feature="subscriptions",
    also=("6.11", "5.2.12"),
)
def update_pause_and_resume(k: Kit) -> None:
    sub_id = subscribe(k, _unused(k))
    k.expect_status(k.patch(f"/subscriptions/{sub_id}", {"isActive": False}), 204)
    k.expect(_retrieved(k, sub_id).get("status") == "paused", "isActive=false did not pause the subscription")
    k.expect_status(k.patch(f"/subscriptions/{sub_id}", {"isActive": True}), 204)
    k.expect(_retrieved(k, sub_id).get("status") == "active", "isActive=true did not make it active again")


@case(
    "5.8.2",
    "An update fragment that breaks clause 5.2.12 is a BadRequestData error (400) and changes nothing.",
    feature="subscriptions",
    also=("6.11",),
)
def update_invalid_fragment_is_400(k: Kit) -> None:
    sub_id = subscribe(k, _unused(k, q="speed>1"))
    fragments: list[dict[str, Any]] = [
        {"q": "speed>>1"},
        {"watchedAttributes": []},
        {"throttling": -1},
        {"isActive": "no"},
    ]
    for fragment in fragments:
        k.expect_problem(k.patch(f"/subscriptions/{sub_id}", fragment), 400, "BadRequestData")
    sub = _retrieved(k, sub_id)
    k.expect(sub.get("q") == "speed>1" and "watchedAttributes" not in sub, f"after refused updates: {sub!r:.300}")


@case(
    "5.8.2",
    "An update that changes the subscription id is a BadRequestData error (400).",
    feature="subscriptions",
    also=("5.2.12", "6.11"),
)
def update_id_is_400(k: Kit) -> None:
    sub_id = subscribe(k, _unused(k))
    k.expect_problem(k.patch(f"/subscriptions/{sub_id}", {"id": k.uid("Subscription")}), 400, "BadRequestData")


# -- notifications: triggers, selection, filters, formats (clauses 5.2.12, 5.2.14, 5.8.6) --------------------------
NULL = "urn:ngsi-ld:null"


def _reasons(k: Kit, path: str, entity_id: str) -> list[Any]:
    return [r.body.get("triggerReason") for r in k.receiver.received(path) if entity_id in _data_ids(r.body)]


def _quiet(k: Kit, path: str, entity_id: str, seconds: float = 1.0) -> list[Received]:
    """What arrived about entity_id once `seconds` passed (to check that nothing more was sent)."""
    k.wait_until(lambda: False, seconds)
    return [r for r in k.receiver.received(path) if entity_id in _data_ids(r.body)]


@case(
    "5.2.12",
    "notificationTrigger entityCreated notifies the creation of an entity and not its later updates.",
    feature="notifications",
    also=("5.8.6",),
)
def trigger_entity_created(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, notificationTrigger=["entityCreated"]))
    body = vehicle(k, entity_type)
    k.entity(body)
    notifications_about(k, path, body["id"])
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(5)}), 204)
    k.expect(len(_quiet(k, path, body["id"])) == 1, "an update was notified although only entityCreated is set")


@case(
    "5.2.12",
    "notificationTrigger entityUpdated notifies an update of an existing entity.",
    feature="notifications",
    also=("5.8.6",),
)
def trigger_entity_updated(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["entityUpdated"]))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(5)}), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("speed", {}).get("value") == 5, f"notified {entity!r:.300}")


@case(
    "5.2.12",
    "notificationTrigger entityUpdated (attributeDeleted among its parts) notifies a merge that deletes an "
    "attribute, naming the deleted attribute.",
    feature="notifications",
    also=("5.8.6", "5.6.17"),
)
def trigger_entity_updated_on_deletion(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["entityUpdated"]))
    k.expect_status(k.patch(f"/entities/{body['id']}", {"speed": NULL}), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    speed = entity.get("speed")
    k.expect(
        speed == NULL or (isinstance(speed, dict) and speed.get("value") == NULL),
        f"the deleted attribute is notified as {speed!r}",
    )


@case(
    "5.2.12",
    "notificationTrigger attributeCreated notifies an appended attribute.",
    feature="notifications",
    also=("5.8.6",),
)
def trigger_attribute_created(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["attributeCreated"]))
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"fuel": prop(40)}), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("fuel", {}).get("value") == 40, f"notified {entity!r:.300}")


@case(
    "5.2.12",
    "notificationTrigger attributeUpdated alone does not notify an appended new attribute.",
    feature="notifications",
    also=("5.8.6",),
)
def trigger_attribute_updated_only(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["attributeUpdated"]))
    k.expect_status(k.post(f"/entities/{body['id']}/attrs", {"fuel": prop(40)}), 204)
    k.expect(not _quiet(k, path, body["id"], 0.5), "the appended attribute was notified")
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(5)}), 204)
    notifications_about(k, path, body["id"])


@case(
    "5.3.1",
    "A notification names the trigger that caused it in triggerReason.",
    feature="notifications",
    also=("5.8.6",),
)
def trigger_reason_member(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["attributeUpdated"]))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(5)}), 204)
    notifications_about(k, path, body["id"])
    k.expect(_reasons(k, path, body["id"]) == ["attributeUpdated"], f"triggerReason {_reasons(k, path, body['id'])}")


@case(
    "5.2.12",
    "A subscription with watchedAttributes and no entities notifies entities of any type.",
    feature="notifications",
    also=("5.8.6",),
)
def watched_attributes_without_entities(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    attr = k.attr_name("level")
    body = subscription(k, url, "unused", watchedAttributes=[attr])
    del body["entities"]
    subscribe(k, body)
    first, second = vehicle(k, **{attr: prop(1)}), vehicle(k, **{attr: prop(2)})
    k.entity(first)
    k.entity(second)
    notifications_about(k, path, first["id"])
    notifications_about(k, path, second["id"])


@case(
    "5.2.12",
    'An EntitySelector with type "*" subscribes to entities of every type.',
    feature="notifications",
    also=("5.2.33", "5.8.6"),
)
def selector_type_star(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    subscribe(k, subscription(k, url, "*", q="speed==731"))
    body = vehicle(k, speed=prop(731))
    k.entity(body)
    notifications_about(k, path, body["id"])


@case(
    "5.2.12",
    "A subscription with localOnly=true needs neither entities nor watchedAttributes and notifies any entity.",
    feature="notifications",
    also=("5.5.13", "5.8.6"),
)
def local_only_without_selection(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = subscription(k, url, "unused", localOnly=True, q="speed==732")
    del body["entities"]
    subscribe(k, body)
    entity = vehicle(k, speed=prop(732))
    k.entity(entity)
    notifications_about(k, path, entity["id"])


@case(
    "5.2.12",
    "An EntitySelector with idPattern notifies only the entities whose id matches the pattern.",
    feature="notifications",
    also=("5.2.33", "5.8.6"),
)
def selector_id_pattern(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    wanted, other = vehicle(k, entity_type), vehicle(k, entity_type)
    body = subscription(k, url, entity_type)
    body["entities"] = [{"type": entity_type, "idPattern": "^" + wanted["id"].replace(".", "\\.") + "$"}]
    subscribe(k, body)
    k.entity(other)
    k.entity(wanted)
    notifications_about(k, path, wanted["id"])
    k.expect(not _quiet(k, path, other["id"], 0.3), "an entity whose id does not match idPattern was notified")


@case(
    "5.2.12",
    "A change that makes an entity meet the subscription's q is notified.",
    feature="notifications",
    also=("4.9", "5.8.6"),
)
def q_met_after_update(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k, speed=prop(10))
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], q="speed>100"))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(150)}), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("speed", {}).get("value") == 150, f"notified {entity!r:.300}")


@case(
    "5.2.12",
    "A geoQ with georel within a Polygon notifies only the entities located inside it.",
    feature="notifications",
    also=("5.2.13", "4.10", "5.8.6"),
)
def geo_within_polygon(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    square = [[[4.0, 45.0], [5.0, 45.0], [5.0, 46.0], [4.0, 46.0], [4.0, 45.0]]]
    geo = {"geometry": "Polygon", "coordinates": square, "georel": "within"}
    subscribe(k, subscription(k, url, entity_type, geoQ=geo))
    outside, inside = vehicle(k, entity_type, location=point(10.0, 50.0)), vehicle(k, entity_type)
    k.entity(outside)
    k.entity(inside)
    notifications_about(k, path, inside["id"])
    k.expect(not _quiet(k, path, outside["id"], 0.3), "an entity outside the Polygon was notified")


@case(
    "5.2.14",
    "notification.format=concise notifies Properties without their type member.",
    feature="notifications",
    also=("4.5.1", "5.8.6"),
)
def notification_concise(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, notification={"format": "concise"}))
    body = vehicle(k, entity_type)
    k.entity(body)
    speed = _entity_in(notifications_about(k, path, body["id"])[0], body["id"]).get("speed")
    k.expect(
        speed == 80 or (isinstance(speed, dict) and speed.get("value") == 80 and "type" not in speed),
        f"concise speed is {speed!r}",
    )


@case(
    "5.2.14",
    "Without notification.format the normalized representation is notified: each attribute with its type.",
    feature="notifications",
    also=("4.5.1", "5.8.6"),
)
def notification_normalized_default(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type))
    body = vehicle(k, entity_type)
    k.entity(body)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("speed", {}).get("type") == "Property", f"speed is {entity.get('speed')!r}")
    k.expect(entity.get("isParked", {}).get("type") == "Relationship", f"isParked is {entity.get('isParked')!r}")


@case(
    "5.8.6",
    "A deleted attribute that needs no datasetId, system attributes or previous value is its name with the bare "
    "URI urn:ngsi-ld:null.",
    feature="notifications",
    also=("5.2.1",),
)
def deleted_attribute_bare_null(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["attributeDeleted"]))
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/isParked"), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    k.expect(entity.get("isParked") == NULL, f"the deleted Relationship is notified as {entity.get('isParked')!r}")


@case(
    "5.8.6",
    "With sysAttrs, a deleted Relationship is notified as a Relationship whose object is urn:ngsi-ld:null.",
    feature="notifications",
    also=("5.2.1", "4.8"),
)
def deleted_relationship_keeps_its_type(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    sub = subscription(k, url, body["type"], notificationTrigger=["attributeDeleted"], notification={"sysAttrs": True})
    subscribe(k, sub)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/isParked"), 204)
    parked = _entity_in(notifications_about(k, path, body["id"])[0], body["id"]).get("isParked")
    k.expect(
        isinstance(parked, dict) and parked.get("type") == "Relationship" and parked.get("object") == NULL,
        f"the deleted Relationship is notified as {parked!r}",
    )


@case(
    "5.8.6",
    'With showChanges, a deleted LanguageProperty is notified with languageMap {"@none": "urn:ngsi-ld:null"}.',
    feature="notifications",
    also=("5.2.1", "5.2.14"),
)
def deleted_language_property(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k, name={"type": "LanguageProperty", "languageMap": {"en": "bus", "fr": "autobus"}})
    k.entity(body)
    sub = subscription(
        k, url, body["type"], notificationTrigger=["attributeDeleted"], notification={"showChanges": True}
    )
    subscribe(k, sub)
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/name"), 204)
    name = _entity_in(notifications_about(k, path, body["id"])[0], body["id"]).get("name")
    k.expect(
        isinstance(name, dict)
        and name.get("type") == "LanguageProperty"
        and name.get("languageMap") == {"@none": NULL},
        f"the deleted LanguageProperty is notified as {name!r}",
    )


@case(
    "5.2.12",
    "throttling: a second change within the throttling period is not notified.",
    feature="notifications",
    also=("5.8.6",),
)
def throttling_drops_second_change(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], throttling=30))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(1)}), 204)
    notifications_about(k, path, body["id"])
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(2)}), 204)
    k.expect(len(_quiet(k, path, body["id"])) == 1, "a change within the throttling period was notified")


@case(
    "5.2.12",
    "datasetId selects the attribute instances notified: only the instances of the listed datasetIds.",
    feature="notifications",
    also=("4.5.5", "5.8.6"),
)
def dataset_id_selects_instances(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    gps = "urn:ngsi-ld:Dataset:conformance-gps"
    subscribe(k, subscription(k, url, entity_type, datasetId=[gps]))
    body = vehicle(k, entity_type, speed=[prop(80), prop(81, datasetId=gps)])
    k.entity(body)
    speed = _entity_in(notifications_about(k, path, body["id"])[0], body["id"]).get("speed")
    shown = speed if isinstance(speed, list) else [speed]
    k.expect(
        [s.get("value") for s in shown if isinstance(s, dict)] == [81],
        f"speed is notified as {speed!r}, expected only the {gps} instance",
    )


@case(
    "5.2.12",
    "jsonldContext names the @context of notifications: an application/json notification links to it.",
    feature="notifications",
    also=("5.8.6", "6.3.6"),
)
def json_ld_context_member(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    context = k.contexts.publish({"@context": {"Lorry": "https://example.org/conformance/Lorry"}})
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type, jsonldContext=context))
    body = vehicle(k, entity_type)
    k.entity(body)
    note = notifications_about(k, path, body["id"])[0]
    link = note.headers.get("link", "")
    k.expect(f"<{context}>" in link, f"Link header is {link!r}, expected the jsonldContext {context}")


@case(
    "5.8.6",
    "A notification of an entity that does not meet q after a change is not sent.",
    feature="notifications",
    also=("4.9", "5.2.12"),
)
def q_not_met_after_update(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k, speed=prop(150))
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], q="speed>100"))
    k.expect_status(k.patch(f"/entities/{body['id']}/attrs", {"speed": prop(10)}), 204)
    k.expect(not _quiet(k, path, body["id"], 0.5), "a change leaving speed at 10 was notified although q=speed>100")


@case(
    "5.2.14",
    "A Relationship is notified with its object in the normalized representation.",
    feature="notifications",
    also=("4.5.3", "5.8.6"),
)
def notification_relationship_object(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    entity_type = k.type_name()
    subscribe(k, subscription(k, url, entity_type))
    target = k.uid("Garage")
    body = vehicle(k, entity_type, isParked=rel(target))
    k.entity(body)
    parked = _entity_in(notifications_about(k, path, body["id"])[0], body["id"]).get("isParked", {})
    k.expect(parked.get("object") == target, f"isParked is notified as {parked!r}")


@case(
    "5.8.6",
    "The deletion of an entity notified with sysAttrs carries its createdAt and modifiedAt beside deletedAt.",
    feature="notifications",
    also=("4.8", "5.2.14"),
)
def deleted_entity_with_sys_attrs(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    sub = subscription(k, url, body["type"], notificationTrigger=["entityDeleted"], notification={"sysAttrs": True})
    subscribe(k, sub)
    k.expect_status(k.http.delete(f"/entities/{body['id']}"), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    missing = [m for m in ("createdAt", "modifiedAt", "deletedAt") if m not in entity]
    k.expect(not missing, f"the deleted entity lacks {missing}: {sorted(entity)}")


@case(
    "5.8.6",
    "The deletion of an entity notified without showChanges carries no attributes, only its deletedAt.",
    feature="notifications",
    also=("5.2.14",),
)
def deleted_entity_without_attributes(k: Kit) -> None:
    url, path = k.receiver.endpoint()
    body = vehicle(k)
    k.entity(body)
    subscribe(k, subscription(k, url, body["type"], notificationTrigger=["entityDeleted"]))
    k.expect_status(k.http.delete(f"/entities/{body['id']}"), 204)
    entity = _entity_in(notifications_about(k, path, body["id"])[0], body["id"])
    extra = sorted(set(entity) - {"id", "type", "deletedAt", "@context"})
    k.expect(not extra, f"the deleted entity is notified with {extra}")


@case(
    "5.2.12",
    "A subscription naming the version of the specification it conforms to (ngsildConformance 1.9) is created.",
    feature="subscriptions",
    also=("4.3.6.8", "5.8.1"),
)
def ngsild_conformance_current_version(k: Kit) -> None:
    sub = _retrieved(k, subscribe(k, _unused(k, ngsildConformance="1.9")))
    k.expect(sub.get("ngsildConformance") == "1.9", f"ngsildConformance is {sub.get('ngsildConformance')!r}")


@case(
    "5.2.12",
    "An ngsildConformance that is not a version major.minor is a BadRequestData error (400).",
    feature="subscriptions",
)
def ngsild_conformance_malformed_is_400(k: Kit) -> None:
    _expect_refused(k, _unused(k, ngsildConformance="one.nine"))
