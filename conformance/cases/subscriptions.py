"""Subscriptions (clauses 5.8.1-5.8.5, data type 5.2.12, NotificationParams 5.2.15; HTTP binding 6.10, 6.11) and
notifications (5.8.6) delivered to the kit's HTTP receiver, or over MQTT (clause 7) when --mqtt is given."""

from __future__ import annotations

from typing import Any

from conformance.cases._shared import prop, vehicle
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
