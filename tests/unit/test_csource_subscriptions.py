"""Context source registration subscriptions (clauses 5.11, 5.12, 5.3.3; broker.core.csource_subscriptions and the
trigger reasons of broker.notify.csource): what is accepted and refused, what a subscription matches, which
RegistrationInfo elements a notification keeps, and the trigger reason of each registration change."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.csource_subscriptions import compile_csource, matches, matching_infos, notified
from broker.core.errors import BadRequestData
from broker.core.registrations import compile_registration
from broker.core.registrations import validated as registration
from broker.core.subscriptions import validated
from broker.ld.termmap import core_termmap
from broker.notify.csource import trigger_reason
from broker.store.base import RegistrationChange, RegistrationRecord

TM = core_termmap()


def sub(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:Subscription:s1",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9999/notify"}},
    }
    body.update(extra)
    return body


def reg(*infos: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:r1",
        "type": "ContextSourceRegistration",
        "endpoint": "http://source.example/ngsi-ld",
        "information": list(infos) or [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}],
        **extra,
    }
    return registration(body, TM)


def csource(**extra: Any) -> dict[str, Any]:
    return validated("", sub(**extra), TM, None, csource=True)


def matched(doc: dict[str, Any], registration_doc: dict[str, Any]) -> bool:
    return matches(compile_csource(doc, TM), compile_registration("", registration_doc))


# -- validation ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("member", "value", "named"),
    [
        ("temporalQ", "yesterday", "temporalQ"),
        ("temporalQ", {"timerel": "around", "timeAt": "2026-01-01T00:00:00Z"}, "temporalQ.timerel"),
        ("temporalQ", {"timerel": "before"}, "temporalQ.timeAt"),
        ("temporalQ", {"timerel": "before", "timeAt": "soon"}, "temporalQ.timeAt"),
        ("temporalQ", {"timerel": "between", "timeAt": "2026-01-01T00:00:00Z"}, "temporalQ.endTimeAt"),
        ("temporalQ", {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z", "timeproperty": "x"}, "timeproperty"),
        ("temporalQ", {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z", "lastN": 0}, "temporalQ.lastN"),
        ("temporalQ", {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z", "when": 1}, "temporalQ"),
        ("csf", "", "csf"),
        ("csf", "mode==", "csf"),
        ("entities", [], "entities"),
        ("watchedAttributes", [""], "watchedAttributes[0]"),
        ("isActive", "yes", "isActive"),
        ("timeInterval", 0, "timeInterval"),
        ("expiresAt", "tomorrow", "expiresAt"),
        ("geoQ", {"georel": "near"}, "geoQ"),
    ],
)
def test_each_faulty_member_is_named(member: str, value: Any, named: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        csource(**{member: value})
    assert named in caught.value.detail


def test_a_geojson_endpoint_is_refused() -> None:
    body = sub()
    body["notification"]["endpoint"]["accept"] = "application/geo+json"
    with pytest.raises(BadRequestData, match=r"notification\.endpoint\.accept"):
        validated("", body, TM, None, csource=True)


def test_csf_and_temporal_q_are_for_csource_subscriptions_only() -> None:
    when = {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z"}
    assert csource(csf="mode==inclusive", temporalQ=when)["temporalQ"] == when
    assert validated("", sub(csf="mode==inclusive"), TM, None)["csf"] == "mode==inclusive"  # record 0186
    with pytest.raises(BadRequestData, match="csf"):
        validated("", sub(csf="mode=="), TM, None)
    with pytest.raises(BadRequestData, match="temporalQ"):
        validated("", sub(temporalQ=when), TM, None)


# -- matching (clause 5.12) -----------------------------------------------------------------------------------------
def test_entity_selectors_match_entity_info() -> None:
    assert matched(csource(), reg())
    assert not matched(csource(entities=[{"type": "Bus"}]), reg())
    assert matched(csource(entities=[{"type": "Bus"}, {"type": "Vehicle"}]), reg())
    by_id = reg({"entities": [{"type": "Vehicle", "id": "urn:v:1"}]})
    assert matched(csource(entities=[{"type": "Vehicle", "id": "urn:v:1"}]), by_id)
    assert not matched(csource(entities=[{"type": "Vehicle", "id": "urn:v:2"}]), by_id)
    by_pattern = reg({"entities": [{"type": "Vehicle", "idPattern": "^urn:v:"}]})
    assert matched(csource(entities=[{"type": "Vehicle", "id": "urn:v:2"}]), by_pattern)
    assert matched(csource(entities=[{"type": "Vehicle", "idPattern": "^urn:w"}]), by_pattern)  # two patterns


def test_attribute_names_are_watched_and_notified_attributes_together() -> None:
    assert matched(csource(watchedAttributes=["speed"]), reg())
    assert not matched(csource(watchedAttributes=["fuel"]), reg())
    notify_fuel = sub(watchedAttributes=["fuel"])
    notify_fuel["notification"]["attributes"] = ["speed"]
    assert matched(validated("", notify_fuel, TM, None, csource=True), reg())
    only_entities = reg({"entities": [{"type": "Vehicle"}]})
    assert matched(csource(watchedAttributes=["fuel"]), only_entities)  # no names registered: any may be there


def test_temporal_q_matches_registrations_with_intervals_only() -> None:
    latest = reg()
    history = reg(observationInterval={"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"})
    assert matched(csource(), latest) and not matched(csource(), history)
    inside = {"timerel": "after", "timeAt": "2020-06-01T00:00:00Z"}
    after = {"timerel": "after", "timeAt": "2022-01-01T00:00:00Z"}
    assert matched(csource(temporalQ=inside), history) and not matched(csource(temporalQ=inside), latest)
    assert not matched(csource(temporalQ=after), history)
    managed = {**inside, "timeproperty": "modifiedAt"}
    assert not matched(csource(temporalQ=managed), history)  # modifiedAt asks for the managementInterval


def test_geo_q_scope_q_and_csf() -> None:
    here = {"type": "Point", "coordinates": [2.35, 48.85]}
    located = reg(location={"type": "Polygon", "coordinates": [[[2, 48], [3, 48], [3, 49], [2, 49], [2, 48]]]})
    near = {"georel": "intersects", "geometry": "Point", "coordinates": here["coordinates"]}
    far = {"georel": "intersects", "geometry": "Point", "coordinates": [10.0, 10.0]}
    assert matched(csource(geoQ=near), located) and not matched(csource(geoQ=far), located)
    scoped = reg(scope="/city/north")
    assert matched(csource(scopeQ="/city/#"), scoped) and not matched(csource(scopeQ="/harbour"), scoped)
    assert matched(csource(csf="mode==inclusive"), reg(mode="inclusive"))
    assert not matched(csource(csf="mode==inclusive"), reg(mode="auxiliary"))


def test_dataset_ids_need_one_in_common_when_both_have_them() -> None:
    sensors = reg(datasetId=["urn:ds:sensor", "@none"])
    assert matched(csource(datasetId=["urn:ds:sensor"]), sensors)
    assert matched(csource(datasetId=["@none"]), sensors)
    assert not matched(csource(datasetId=["urn:ds:model"]), sensors)
    assert matched(csource(datasetId=["urn:ds:model"]), reg()) and matched(csource(), sensors)


def test_only_the_matching_registration_info_is_notified() -> None:
    doc = reg({"entities": [{"type": "Bus"}]}, {"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]})
    match = compile_csource(csource(), TM)
    assert matching_infos(match, compile_registration("", doc)) == [1]
    shown = notified(match, RegistrationRecord("", doc["id"], doc), TM, filtered=True)
    assert shown["information"] == [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}]
    whole = notified(match, RegistrationRecord("", doc["id"], doc), TM, filtered=False)
    assert len(whole["information"]) == 2


# -- trigger reasons (clause 5.3.3) ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        (None, "Vehicle", "newlyMatching"),
        (None, "Bus", None),
        ("Vehicle", "Vehicle", "updated"),
        ("Bus", "Vehicle", "newlyMatching"),
        ("Vehicle", "Bus", "noLongerMatching"),
        ("Bus", "Bus", None),
        ("Vehicle", None, "noLongerMatching"),
        ("Bus", None, None),
    ],
)
def test_trigger_reason(before: str | None, after: str | None, reason: str | None) -> None:
    def state(kind: str | None) -> dict[str, Any] | None:
        return None if kind is None else reg({"entities": [{"type": kind}]})

    change = RegistrationChange(1, "", "urn:r", state(before), state(after), "2026-01-01T00:00:00Z")
    assert trigger_reason(compile_csource(csource(), TM), change) == reason
