"""Which changes notify which subscriptions (broker.notify.matching) and the notification body."""

from __future__ import annotations

from typing import Any

from broker.core.model import Entity
from broker.core.subscriptions import compile_subscription, validated
from broker.ld.termmap import core_termmap
from broker.notify.matching import fired, trigger_reason
from broker.notify.notification import build, notification_id
from broker.store.base import Change

CORE = core_termmap()
V = "https://uri.etsi.org/ngsi-ld/default-context/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
AT = "2026-01-01T00:00:00.000000Z"


def entity(eid: str = "urn:ngsi-ld:Vehicle:1", kind: str = "Vehicle", **values: Any) -> Entity:
    attrs = {V + k: [{"type": "Property", "value": v}] for k, v in values.items()}
    return {"id": eid, "type": [V + kind], "createdAt": AT, "modifiedAt": AT, "attrs": attrs}


def change(before: Entity | None, after: Entity | None, seq: int = 1) -> Change:
    eid = (after or before or {})["id"]
    return Change(seq, "", eid, before, after, AT)


def compiled(**extra: Any) -> Any:
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:Subscription:1",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    body.update(extra)
    body = {k: v for k, v in body.items() if v is not None}
    return compile_subscription("", validated("", body, CORE, None), CORE)


def reason(sub: Any, c: Change) -> str | None:
    return trigger_reason(sub, c, fired(c))


def test_fired_triggers() -> None:
    a = entity(speed=1, fuel=5)
    assert fired(change(None, a)) == {
        "entityCreated": {V + "speed", V + "fuel"},
        "attributeCreated": {V + "speed", V + "fuel"},
    }
    assert fired(change(a, None)) == {"entityDeleted": {V + "speed", V + "fuel"}}
    b = entity(speed=2, brand="x")
    assert fired(change(a, b)) == {
        "attributeCreated": {V + "brand"},
        "attributeUpdated": {V + "speed"},
        "attributeDeleted": {V + "fuel"},
        "entityUpdated": {V + "brand", V + "speed", V + "fuel"},
    }
    assert fired(change(a, {**a, "scope": ["/A"]})) == {"entityUpdated": frozenset()}


def test_default_triggers_notify_creation_and_update_not_deletion() -> None:
    sub = compiled()
    a = entity(speed=1)
    assert reason(sub, change(None, a)) == "attributeCreated"
    assert reason(sub, change(a, entity(speed=2))) == "attributeUpdated"
    assert reason(sub, change(a, None)) is None


def test_entity_triggers() -> None:
    sub = compiled(notificationTrigger=["entityCreated", "entityDeleted", "entityUpdated"])
    a = entity(speed=1)
    assert reason(sub, change(None, a)) == "entityCreated"
    assert reason(sub, change(a, entity(speed=2))) == "entityUpdated"
    assert reason(sub, change(a, None)) == "entityDeleted"


def test_watched_attributes_restrict_attribute_triggers() -> None:
    sub = compiled(watchedAttributes=["speed"], notificationTrigger=["attributeUpdated", "attributeDeleted"])
    a = entity(speed=1, fuel=5)
    assert reason(sub, change(a, entity(speed=1, fuel=6))) is None
    assert reason(sub, change(a, entity(speed=2, fuel=5))) == "attributeUpdated"
    assert reason(sub, change(a, entity(fuel=5))) == "attributeDeleted"


def test_selectors_types_ids_patterns() -> None:
    by_id = compiled(entities=[{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:2"}])
    by_pattern = compiled(entities=[{"type": "Vehicle", "idPattern": ":Vehicle:[12]$"}])
    other_type = compiled(entities=[{"type": "Bus"}])
    attrs_only = compiled(entities=None, watchedAttributes=["speed"])
    one, two, three = (change(None, entity(f"urn:ngsi-ld:Vehicle:{n}", speed=1)) for n in (1, 2, 3))
    assert [reason(by_id, c) for c in (one, two)] == [None, "attributeCreated"]
    assert [reason(by_pattern, c) for c in (one, two, three)] == ["attributeCreated", "attributeCreated", None]
    assert reason(other_type, one) is None
    assert reason(attrs_only, change(None, entity(kind="Bus", speed=1))) == "attributeCreated"


def test_q_geo_scope_read_the_new_state() -> None:
    sub = compiled(q="speed>50")
    assert reason(sub, change(entity(speed=10), entity(speed=60))) == "attributeUpdated"
    assert reason(sub, change(entity(speed=60), entity(speed=10))) is None
    scoped = compiled(scopeQ="/Madrid/#")
    assert reason(scoped, change(None, {**entity(speed=1), "scope": ["/Madrid/Centro"]})) == "attributeCreated"
    assert reason(scoped, change(None, entity(speed=1))) is None
    near = compiled(geoQ={"geometry": "Point", "coordinates": [2.35, 48.85], "georel": "near;maxDistance==1000"})
    here = {
        **entity(),
        "attrs": {LOCATION: [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.351, 48.851]}}]},
    }
    far = {
        **entity(),
        "attrs": {LOCATION: [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [3.0, 48.0]}}]},
    }
    assert reason(near, change(None, here)) == "attributeCreated"
    assert reason(near, change(None, far)) is None


def test_notification_body_and_deterministic_id() -> None:
    sub = compiled(notification={"format": "keyValues", "attributes": ["speed"], "endpoint": {"uri": "http://h/n"}})
    c = change(None, entity(speed=7, fuel=1), seq=42)
    body = build(sub, [(c, frozenset())], "attributeCreated", CORE, "2026-01-01T00:00:01.000000Z")
    assert body == {
        "id": notification_id("", sub.id, 42),
        "type": "Notification",
        "subscriptionId": sub.id,
        "notifiedAt": "2026-01-01T00:00:01.000000Z",
        "data": [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 7}],
        "triggerReason": "attributeCreated",
    }
    assert notification_id("", sub.id, 42) == notification_id("", sub.id, 42) != notification_id("", sub.id, 43)
    assert notification_id("t", sub.id, 42) != notification_id("", sub.id, 42)


def test_notification_of_deleted_entity_and_attribute() -> None:
    """Clause 5.8.6: a deleted attribute is only its name and "urn:ngsi-ld:null" unless more is needed (the old
    reading, an object with deletedAt always, was corrected)."""
    sub = compiled()
    gone = build(sub, [(change(entity(speed=1), None), frozenset())], "entityDeleted", CORE, AT)
    assert gone["data"] == [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "deletedAt": AT}]
    with_sys = build(
        compiled(notification={"endpoint": {"uri": "http://127.0.0.1:9/n"}, "sysAttrs": True}),
        [(change(entity(speed=1), None), frozenset())],
        "entityDeleted",
        CORE,
        AT,
    )
    assert with_sys["data"] == [
        {"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "createdAt": AT, "modifiedAt": AT, "deletedAt": AT}
    ]
    less = build(
        sub, [(change(entity(speed=1, fuel=2), entity(speed=1)), frozenset({V + "fuel"}))], "attributeDeleted", CORE, AT
    )
    assert less["data"][0]["fuel"] == "urn:ngsi-ld:null"


def _deleted(before: Entity, name: str, **notification: Any) -> Any:
    sub = compiled(notification={"endpoint": {"uri": "http://127.0.0.1:9/n"}, **notification})
    after = {**before, "attrs": {k: v for k, v in before["attrs"].items() if k != V + name}}
    body = build(sub, [(change(before, after), frozenset({V + name}))], "attributeDeleted", CORE, AT)
    return body["data"][0][name]


def test_deleted_attribute_keeps_its_type_when_more_is_needed() -> None:
    """With sysAttrs, showChanges or a datasetId the deleted attribute is an object of its own type: a Relationship
    with object null, a LanguageProperty with languageMap {"@none": null} (clause 5.8.6)."""
    e = entity(speed=1)
    e["attrs"][V + "owner"] = [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "createdAt": AT}]
    e["attrs"][V + "name"] = [{"type": "LanguageProperty", "languageMap": {"en": "bus"}}]
    e["attrs"][V + "fuel"] = [{"type": "Property", "value": 3, "datasetId": "urn:ngsi-ld:Dataset:a"}]
    assert _deleted(e, "owner") == "urn:ngsi-ld:null"
    assert _deleted(e, "name") == "urn:ngsi-ld:null"
    assert _deleted(e, "owner", sysAttrs=True) == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:null",
        "createdAt": AT,
        "deletedAt": AT,
    }
    assert _deleted(e, "name", showChanges=True) == {
        "type": "LanguageProperty",
        "languageMap": {"@none": "urn:ngsi-ld:null"},
        "previousLanguageMap": {"en": "bus"},
    }
    assert _deleted(e, "owner", showChanges=True)["previousObject"] == "urn:ngsi-ld:Person:1"
    assert _deleted(e, "fuel") == {
        "type": "Property",
        "value": "urn:ngsi-ld:null",
        "datasetId": "urn:ngsi-ld:Dataset:a",
    }
    assert _deleted(e, "fuel", format="concise") == {"value": "urn:ngsi-ld:null", "datasetId": "urn:ngsi-ld:Dataset:a"}
    assert _deleted(e, "owner", format="keyValues", sysAttrs=True) == "urn:ngsi-ld:null"


def test_entity_updated_trigger_shows_deleted_attributes() -> None:
    """entityUpdated covers attributeDeleted (clause 5.2.12), so its notification names the deleted attribute."""
    from broker.notify.notifier import _job

    before, after = entity(speed=1, fuel=2), entity(speed=1)
    for triggers in (["entityUpdated"], ["attributeDeleted"]):
        job = _job(compiled(notificationTrigger=triggers), CORE, change(before, after), AT)
        assert job is not None and job.deleted == {V + "fuel"}, triggers
    assert _job(compiled(), CORE, change(before, after), AT) is None  # the default triggers do not include it


def test_dataset_ids_select_the_instances_shown() -> None:
    sub = compiled(datasetId=["urn:ngsi-ld:Dataset:gps", "@none"])
    e = entity(speed=1, fuel=2)
    e["attrs"][V + "speed"].append({"type": "Property", "value": 3, "datasetId": "urn:ngsi-ld:Dataset:gps"})
    e["attrs"][V + "fuel"] = [{"type": "Property", "value": 4, "datasetId": "urn:ngsi-ld:Dataset:other"}]
    shown = build(sub, [(change(None, e), frozenset())], "attributeCreated", CORE, AT)["data"][0]
    assert [i["value"] for i in shown["speed"]] == [1, 3]
    assert "fuel" not in shown


def test_several_changes_share_one_notification_with_a_stable_id() -> None:
    sub = compiled(notification={"format": "keyValues", "attributes": ["speed"], "endpoint": {"uri": "http://h/n"}})
    changes = [(change(None, entity(f"urn:ngsi-ld:Vehicle:{n}", speed=n), seq=10 + n), frozenset()) for n in range(3)]
    body = build(sub, changes, "attributeCreated", CORE, AT)
    assert [d["speed"] for d in body["data"]] == [0, 1, 2]
    assert body["id"] == build(sub, changes, "attributeCreated", CORE, AT)["id"] != notification_id("", sub.id, 10)


def test_deleted_entity_with_show_changes_shows_its_attributes_as_they_were() -> None:
    """Clause 5.8.6: only deletedAt "if ... the notification.showChanges member is not set to true"; with it, each
    attribute the subscription shows is notified deleted, with its previous content."""
    before = entity(speed=1, fuel=2)
    before["attrs"][V + "owner"] = [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}]
    endpoint = {"uri": "http://127.0.0.1:9/n"}
    sub = compiled(notification={"endpoint": endpoint, "showChanges": True, "attributes": ["speed", "owner"]})
    gone = build(sub, [(change(before, None), frozenset())], "entityDeleted", CORE, AT)["data"][0]
    assert gone == {
        "id": "urn:ngsi-ld:Vehicle:1",
        "type": "Vehicle",
        "deletedAt": AT,
        "speed": {"type": "Property", "value": "urn:ngsi-ld:null", "previousValue": 1},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:null", "previousObject": "urn:ngsi-ld:Person:1"},
    }
