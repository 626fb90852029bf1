"""Subscription documents (clause 5.2.12): what is accepted, what is refused and how, and re-expression in
another @context (broker.core.subscriptions)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from broker.core.errors import BadRequestData, NgsiLdError, OperationNotSupported
from broker.core.subscriptions import compile_subscription, express, merge_fragment, status_of, validated
from broker.ld.termmap import TermMap, core_termmap

CORE = core_termmap()
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
EX_CONTEXT = {"ex": "https://example.org/", "speed": "ex:speed", "Vehicle": "ex:Vehicle"}


def sub(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:Subscription:s1",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9999/notify"}},
    }
    body.update(extra)
    return body


def with_notification(**members: Any) -> dict[str, Any]:
    body = sub()
    body["notification"].update(members)
    return body


def with_endpoint(**members: Any) -> dict[str, Any]:
    body = sub()
    body["notification"]["endpoint"].update(members)
    return body


def test_minimal_subscription_is_valid_and_compiles() -> None:
    doc = validated("", sub(), CORE, None)
    compiled = compile_subscription("", doc, CORE)
    assert compiled.triggers == {"attributeCreated", "attributeUpdated"}
    assert compiled.watched is None and compiled.is_active and compiled.endpoint.accept == "application/json"


def test_every_member_of_the_clause_is_accepted() -> None:
    body = sub(
        subscriptionName="fast vehicles",
        description="d",
        entities=[{"type": "Vehicle", "idPattern": "^urn:.*"}, {"type": "Vehicle,Bus", "id": "urn:ngsi-ld:Bus:1"}],
        watchedAttributes=["speed"],
        notificationTrigger=["entityCreated", "attributeDeleted"],
        q="speed>50",
        geoQ={"geometry": "Point", "coordinates": [2.35, 48.85], "georel": "near;maxDistance==2000"},
        scopeQ="/Madrid/#",
        isActive=False,
        expiresAt="2099-01-01T00:00:00Z",
        throttling=5,
        lang="en",
        datasetId=["urn:ngsi-ld:Dataset:1", "@none"],
        jsonldContext="https://example.org/context.jsonld",
        expandValues=["speed"],
        localOnly=True,
        splitEntities=False,
        ngsildConformance="1.9",
        status="active",  # read-only: ignored
    )
    body["notification"] = {
        "attributes": ["speed"],
        "sysAttrs": True,
        "format": "keyValues",
        "showChanges": False,
        "timesSent": 3,  # read-only: ignored
        "endpoint": {
            "uri": "https://example.org/notify",
            "accept": "application/ld+json",
            "timeout": 2000,
            "cooldown": 100,
            "receiverInfo": [{"key": "X-Auth", "value": "secret"}],
            "notifierInfo": [{"key": "k", "value": "v"}],
        },
    }
    doc = validated("", body, CORE, None)
    assert "status" not in doc and "timesSent" not in doc["notification"]
    compiled = compile_subscription("", doc, CORE)
    assert compiled.watched == {VOCAB + "speed"}
    assert compiled.endpoint.timeout == 2.0 and compiled.endpoint.receiver_info == (("X-Auth", "secret"),)
    assert compiled.view.format == "simplified" and compiled.view.sys_attrs
    assert compiled.context == "https://example.org/context.jsonld"
    assert compiled.query.q is not None and compiled.query.geo is not None and compiled.query.scope is not None


BAD = [
    ("unknown member", sub(foo=1)),
    ("wrong type", sub(type="Subscriptions")),
    ("id not a URI", sub(id="not a uri")),
    ("neither entities nor watchedAttributes", {k: v for k, v in sub().items() if k != "entities"}),
    ("empty entities", sub(entities=[])),
    ("join unknown", with_notification(join="deep")),
    ("joinLevel zero", with_notification(join="flat", joinLevel=0)),
    ("joinLevel text", with_notification(join="flat", joinLevel="2")),
    ("timeInterval zero", sub(timeInterval=0)),
    ("timeInterval not a number", sub(timeInterval="60")),
    ("timeInterval with watchedAttributes", sub(timeInterval=60, watchedAttributes=["speed"])),
    ("timeInterval with throttling", sub(timeInterval=60, throttling=5)),
    (
        "timeInterval without entities",
        {**{k: v for k, v in sub().items() if k != "entities"}, "timeInterval": 60, "watchedAttributes": ["a"]},
    ),
    ("selector without type", sub(entities=[{"id": "urn:a"}])),
    ("unknown selector member", sub(entities=[{"type": "T", "ids": "urn:a"}])),
    ("selector id not a URI", sub(entities=[{"type": "T", "id": "a b"}])),
    ("bad idPattern", sub(entities=[{"type": "T", "idPattern": "("}])),
    ("bad type selection", sub(entities=[{"type": "(A;"}])),
    ("watchedAttributes not a list", sub(watchedAttributes="speed")),
    ("bad attribute name", sub(watchedAttributes=["sp eed"])),
    ("unknown trigger", sub(notificationTrigger=["entityChanged"])),
    ("bad q", sub(q="speed>>1")),
    ("bad scopeQ", sub(scopeQ="Madrid")),
    ("geoQ without georel", sub(geoQ={"geometry": "Point", "coordinates": [1, 2]})),
    ("geoQ bad coordinates", sub(geoQ={"geometry": "Point", "coordinates": [500, 2], "georel": "within"})),
    ("geoQ unknown member", sub(geoQ={"geometry": "Point", "coordinates": [1, 2], "georel": "within", "x": 1})),
    ("isActive not boolean", sub(isActive="yes")),
    ("localOnly not boolean", sub(localOnly="true")),
    ("splitEntities not boolean", sub(splitEntities=1)),
    ("ngsildConformance not major.minor", sub(ngsildConformance="1.9.1")),
    ("ngsildConformance not a string", sub(ngsildConformance=1.9)),
    ("no selection with localOnly false", {**{k: v for k, v in sub().items() if k != "entities"}, "localOnly": False}),
    ("throttling zero", sub(throttling=0)),
    ("throttling negative", sub(throttling=-1)),
    ("expiresAt not a DateTime", sub(expiresAt="tomorrow")),
    ("jsonldContext not a URI", sub(jsonldContext="context")),
    ("datasetId not a URI", sub(datasetId=["x y"])),
    ("no notification", {k: v for k, v in sub().items() if k != "notification"}),
    ("no endpoint", sub(notification={"format": "normalized"})),
    ("unknown notification member", with_notification(foo=1)),
    ("bad format", with_notification(format="compact")),
    ("attributes and pick", with_notification(attributes=["a"], pick="b")),
    ("bad pick", with_notification(pick="a{")),
    # clause 4.21 (record 0102): a member both picked and omitted, omit beside attributes (a synonym for pick),
    # a name an attribute cannot have
    ("pick and omit name one member", with_notification(pick="a,b", omit="b")),
    ("attributes and omit", with_notification(attributes=["a"], omit="b")),
    ("pick with a character no name holds", with_notification(pick="a<b")),
    ("omit with a character no name holds", with_notification(omit=["a=b"])),
    ("sysAttrs not boolean", with_notification(sysAttrs="true")),
    ("unknown endpoint member", with_endpoint(foo=1)),
    ("endpoint scheme", with_endpoint(uri="ftp://example.org/x")),
    ("endpoint not a URI", with_endpoint(uri="nowhere")),
    ("endpoint without host", with_endpoint(uri="http:///x")),
    ("bad accept", with_endpoint(accept="text/plain")),
    ("negative timeout", with_endpoint(timeout=-1)),
    ("receiverInfo not key/value", with_endpoint(receiverInfo=[{"key": "a"}])),
    ("receiverInfo bad header", with_endpoint(receiverInfo=[{"key": "a b", "value": "1"}])),
    ("receiverInfo newline", with_endpoint(receiverInfo=[{"key": "a", "value": "1\r\nX: 2"}])),
    ("mqtt without topic", with_endpoint(uri="mqtt://127.0.0.1:1883")),
    ("mqtt empty topic", with_endpoint(uri="mqtt://127.0.0.1:1883/")),
    ("mqtt without host", with_endpoint(uri="mqtt:///topic")),
    ("mqtt port out of range", with_endpoint(uri="mqtt://127.0.0.1:70000/topic")),
    ("mqtt wildcard +", with_endpoint(uri="mqtt://127.0.0.1/a/+/b")),
    ("mqtt wildcard #", with_endpoint(uri="mqtt://127.0.0.1/a/%23")),
    ("mqtt query", with_endpoint(uri="mqtt://127.0.0.1/a?x=1")),
    ("mqtt unknown notifierInfo", with_endpoint(uri="mqtt://h/t", notifierInfo=[{"key": "MQTT-Retain", "value": "1"}])),
    ("mqtt bad version", with_endpoint(uri="mqtt://h/t", notifierInfo=[{"key": "MQTT-Version", "value": "mqtt3.1"}])),
    ("mqtt bad qos", with_endpoint(uri="mqtts://h/t", notifierInfo=[{"key": "MQTT-QoS", "value": "3"}])),
    ("mqtt qos not text", with_endpoint(uri="mqtt://h/t", notifierInfo=[{"key": "MQTT-QoS", "value": 1}])),
    (
        "mqtt key twice",
        with_endpoint(
            uri="mqtt://h/t", notifierInfo=[{"key": "MQTT-QoS", "value": "1"}, {"key": "MQTT-QoS", "value": "1"}]
        ),
    ),
]


@pytest.mark.parametrize(("why", "body"), BAD, ids=[b[0] for b in BAD])
def test_bad_subscriptions_are_bad_request_data(why: str, body: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        validated("", copy.deepcopy(body), CORE, None)


NOT_YET = [
    ("ngsildConformance of an older version", sub(ngsildConformance="1.6")),  # record 0138
]


def test_local_only_subscribes_to_every_entity() -> None:
    """Table 5.2.12-1: neither entities nor watchedAttributes are needed "if localOnly is set to true"."""
    body = {k: v for k, v in sub().items() if k != "entities"}
    compiled = compile_subscription("", validated("", {**body, "localOnly": True}, CORE, None), CORE)
    assert compiled.selectors == () and compiled.watched is None


MQTT_OK = [
    "mqtt://127.0.0.1:1883/topic",
    "mqtts://broker.example.org/a/b/c",
    "mqtt://user:pass@broker.example.org:1884/fleet/vehicles",
    "MQTT://[::1]:1883/t",
]


@pytest.mark.parametrize("uri", MQTT_OK)
def test_mqtt_endpoints_are_accepted_with_their_notifier_info(uri: str) -> None:
    info = [{"key": "MQTT-Version", "value": "mqtt3.1.1"}, {"key": "MQTT-QoS", "value": "2"}]
    doc = validated("", with_endpoint(uri=uri, notifierInfo=info), CORE, None)
    compiled = compile_subscription("", doc, CORE)
    assert compiled.endpoint.notifier_info == (("MQTT-Version", "mqtt3.1.1"), ("MQTT-QoS", "2"))


@pytest.mark.parametrize(("why", "body"), NOT_YET, ids=[b[0] for b in NOT_YET])
def test_valid_but_unsupported_members_are_refused_not_ignored(why: str, body: dict[str, Any]) -> None:
    with pytest.raises(OperationNotSupported):
        validated("", copy.deepcopy(body), CORE, None)


def test_status_follows_is_active_and_expires_at() -> None:
    now = "2030-01-01T00:00:00.000000Z"
    assert status_of({}, now) == "active"
    assert status_of({"isActive": False}, now) == "paused"
    assert status_of({"expiresAt": "2029-12-31T23:59:59Z"}, now) == "expired"
    assert status_of({"expiresAt": "2030-01-01T01:00:00+02:00"}, now) == "expired"
    assert status_of({"expiresAt": "2030-01-01T00:00:01Z"}, now) == "active"


def test_merge_fragment_merges_notification_one_level_and_null_removes() -> None:
    current = validated("", sub(q="speed>1", throttling=3), CORE, None)
    merged = merge_fragment(current, {"q": "speed>2", "throttling": None, "notification": {"format": "concise"}})
    assert merged["q"] == "speed>2" and "throttling" not in merged
    assert merged["notification"] == {"format": "concise", "endpoint": current["notification"]["endpoint"]}
    with pytest.raises(BadRequestData):
        merge_fragment(current, {"id": "urn:ngsi-ld:Subscription:other"})
    with pytest.raises(BadRequestData):
        merge_fragment(current, {})


def test_express_rewrites_terms_for_another_context() -> None:
    ex = TermMap.build(EX_CONTEXT, {})
    body = sub(entities=[{"type": "Vehicle"}], watchedAttributes=["speed"], q="speed>5")
    body["notification"]["attributes"] = ["speed"]
    doc = validated("", body, ex, EX_CONTEXT)
    shown = express(doc, ex, CORE)
    assert shown["entities"] == [{"type": "https://example.org/Vehicle"}]
    assert shown["watchedAttributes"] == ["https://example.org/speed"]
    assert shown["notification"]["attributes"] == ["https://example.org/speed"]
    assert "@context" not in shown
    assert shown["q"] == "https://example.org/speed>5"


def test_strict_express_refuses_what_would_change_meaning() -> None:
    ex = TermMap.build(EX_CONTEXT, {})
    doc = validated("", sub(q="speed>5"), ex, EX_CONTEXT)
    # A q over full IRIs does not read back as written (the q grammar splits at dots), so an update in the core
    # context is refused instead of silently changing the condition.
    with pytest.raises(BadRequestData, match="q of this subscription"):
        express(doc, ex, CORE, strict=True)
    names_only = validated("", sub(watchedAttributes=["speed"]), ex, EX_CONTEXT)
    assert express(names_only, ex, CORE, strict=True)["watchedAttributes"] == ["https://example.org/speed"]


def test_errors_name_where_they_are() -> None:
    with pytest.raises(NgsiLdError) as info:
        validated("", with_endpoint(receiverInfo=[{"key": "a b", "value": "1"}]), CORE, None)
    assert "notification.endpoint.receiverInfo[0].key" in info.value.detail


def test_periodic_subscription_compiles_and_ignores_changes() -> None:
    from broker.notify.matching import fired, trigger_reason
    from broker.store.base import Change

    body = validated("", sub(timeInterval=2.5), CORE, None)
    compiled = compile_subscription("", body, CORE)
    assert compiled.time_interval == 2.5
    entity = {"id": "urn:a", "type": ["https://uri.etsi.org/ngsi-ld/default-context/Vehicle"], "attrs": {}}
    change = Change(1, "", "urn:a", None, entity, "2026-01-01T00:00:00Z")
    assert trigger_reason(compiled, change, fired(change)) is None
