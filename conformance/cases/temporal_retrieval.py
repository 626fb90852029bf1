"""Retrieve Temporal Evolution of an Entity (clause 5.7.3; HTTP binding 6.19): the temporal query (4.11), lastN,
projection and datasetId, the temporal representations (4.5.7, 4.5.8, 4.5.9, 4.6.5) and partial answers (6.3.10).
The temporal API is an optional feature ("not implemented" without it)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from conformance.cases._temporal import (
    DAY,
    TIMES,
    create,
    entity_with_history,
    instances,
    instant,
    observed,
    problem,
    retrieve,
    sensor,
    values,
)
from conformance.kit import Kit, case

NULL = "urn:ngsi-ld:null"


@case(
    "4.11",
    "timerel=before is an exclusive bound: an instance observed exactly at timeAt is left out.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def before_is_exclusive(k: Kit) -> None:
    body = create(k)
    found = values(k, retrieve(k, body["id"], {"timerel": "before", "timeAt": TIMES[1]}))
    k.expect(found == [20], f"before {TIMES[1]} gave {found}, expected [20]")


@case(
    "4.11",
    "timerel=after is an inclusive bound: an instance observed exactly at timeAt is kept.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def after_is_inclusive(k: Kit) -> None:
    body = create(k)
    found = values(k, retrieve(k, body["id"], {"timerel": "after", "timeAt": TIMES[1]}))
    k.expect(found == [21, 22], f"after {TIMES[1]} gave {found}, expected [21, 22]")


@case(
    "4.11",
    "timerel=between includes an instance at timeAt and leaves out one at endTimeAt.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def between_bounds(k: Kit) -> None:
    body = create(k)
    params = {"timerel": "between", "timeAt": TIMES[0], "endTimeAt": TIMES[2]}
    found = values(k, retrieve(k, body["id"], params))
    k.expect(found == [20, 21], f"between {TIMES[0]} and {TIMES[2]} gave {found}, expected [20, 21]")


@case(
    "4.11",
    "timerel=between without endTimeAt is a BadRequestData error (400).",
    feature="temporal",
    also=("6.19",),
)
def between_without_end_is_400(k: Kit) -> None:
    body = create(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params={"timerel": "between", "timeAt": TIMES[0]})
    problem(k, response, 400, "BadRequestData")


@case("4.11", "A timerel other than before, after and between is a BadRequestData error (400).", feature="temporal")
def unknown_timerel_is_400(k: Kit) -> None:
    body = create(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params={"timerel": "during", "timeAt": TIMES[0]})
    problem(k, response, 400, "BadRequestData")


@case(
    "4.11",
    "timeproperty=createdAt applies the temporal query to when the instances entered the system.",
    feature="temporal",
    also=("5.7.3", "6.19", "4.8"),
)
def timeproperty_created_at(k: Kit) -> None:
    body = create(k)  # observed in 2020, created now
    since = {"timerel": "after", "timeAt": "2021-01-01T00:00:00Z"}
    by_created = values(k, retrieve(k, body["id"], {**since, "timeproperty": "createdAt"}))
    k.expect(sorted(by_created) == [20, 21, 22], f"created after 2021: {by_created}, expected every instance")
    # Nothing observed after 2021: an empty temporal entity, or none at all (5.7.3 removes it from the result).
    response = k.http.get(f"/temporal/entities/{body['id']}", params=since)
    k.expect_status(response, 200, 404)
    by_observed = k.json(response).get("temperature") if response.status_code == 200 else None
    k.expect(not by_observed, f"observed after 2021: {by_observed!r:.200}, expected none")


@case("4.11", "A timeproperty that is not a Temporal Property is a BadRequestData error (400).", feature="temporal")
def invalid_timeproperty_is_400(k: Kit) -> None:
    body = create(k)
    params = {**DAY, "timeproperty": "temperature"}
    problem(k, k.http.get(f"/temporal/entities/{body['id']}", params=params), 400, "BadRequestData")


@case("5.7.3", "lastN=2 gives the two instances with the most recent observedAt.", feature="temporal", also=("6.19",))
def last_n_two(k: Kit) -> None:
    body = create(k)
    found = values(k, retrieve(k, body["id"], {"lastN": "2"}))
    k.expect(found == [21, 22], f"lastN=2 gave {found}, expected [21, 22]")


@case(
    "5.7.3",
    "lastN counts within the temporal interval: the last instances before timeAt, not the last of all.",
    feature="temporal",
    also=("6.19", "4.11"),
)
def last_n_within_interval(k: Kit) -> None:
    body = create(k)
    found = values(k, retrieve(k, body["id"], {"lastN": "1", "timerel": "before", "timeAt": TIMES[2]}))
    k.expect(found == [21], f"lastN=1 before {TIMES[2]} gave {found}, expected [21]")


@case("5.7.3", "A lastN that is not a positive integer is a BadRequestData error (400).", feature="temporal")
def last_n_not_a_number_is_400(k: Kit) -> None:
    body = create(k)
    problem(k, k.http.get(f"/temporal/entities/{body['id']}", params={"lastN": "two"}), 400, "BadRequestData")


@case(
    "5.7.3",
    "attrs (or pick) restricts the temporal representation to the named attributes.",
    feature="temporal",
    also=("6.19", "4.21"),
)
def projection_of_attributes(k: Kit) -> None:
    body = create(k, sensor(k, humidity=[observed(60, TIMES[0])]))
    doc = retrieve(k, body["id"], {"attrs": "humidity"})
    k.expect("temperature" not in doc, "attrs=humidity still gave temperature")
    k.expect([i.get("value") for i in instances(k, doc, "humidity")] == [60], f"humidity is {doc.get('humidity')!r}")


@case(
    "5.7.3",
    "datasetId selects the instances of the named datasetIds, @none those of the default instance.",
    feature="temporal",
    also=("6.19", "4.5.5"),
)
def dataset_id_selection(k: Kit) -> None:
    body = sensor(k)
    body["temperature"].append(observed(99, TIMES[0], datasetId="urn:ngsi-ld:Dataset:conformance-b"))
    create(k, body)
    chosen = values(k, retrieve(k, body["id"], {"datasetId": "urn:ngsi-ld:Dataset:conformance-b"}))
    k.expect(chosen == [99], f"datasetId=urn:ngsi-ld:Dataset:conformance-b gave {chosen}, expected [99]")
    default = values(k, retrieve(k, body["id"], {"datasetId": "@none"}))
    k.expect(default == [20, 21, 22], f"datasetId=@none gave {default}, expected [20, 21, 22]")


@case(
    "5.7.3",
    "options=sysAttrs adds createdAt and modifiedAt to every instance.",
    feature="temporal",
    also=("6.19", "4.8"),
)
def sys_attrs_on_instances(k: Kit) -> None:
    body = create(k)
    found = instances(k, retrieve(k, body["id"], {"options": "sysAttrs"}), "temperature")
    k.expect(found and all("createdAt" in i and "modifiedAt" in i for i in found), f"instances: {found!r:.300}")


@case(
    "4.5.7",
    "Every instance of a temporal representation carries an instanceId, a URI different for each instance.",
    feature="temporal",
    also=("5.7.3",),
)
def instances_have_distinct_ids(k: Kit) -> None:
    body = create(k)
    ids = [i.get("instanceId") for i in instances(k, retrieve(k, body["id"]), "temperature")]
    k.expect(all(isinstance(i, str) and ":" in i for i in ids), f"instanceIds are {ids}")
    k.expect(len(set(ids)) == len(ids) == 3, f"instanceIds are {ids}, expected 3 different ones")


def _deleted(k: Kit, attr: str, member: dict[str, Any]) -> dict[str, Any]:
    """Create an entity with `attr`, delete the attribute through the entity API, and return the last instance
    of its temporal evolution (the deletion)."""
    body = entity_with_history(k, {"id": k.uid("Sensor"), "type": k.type_name("Sensor"), attr: member})
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/{attr}"), 204)
    found = instances(k, retrieve(k, body["id"]), attr)
    k.expect(len(found) == 2, f"{attr} has {len(found)} instances after its deletion, expected 2 (clause 4.5.7)")
    return max(found, key=lambda i: "deletedAt" in i)


@case(
    "4.5.7",
    "A deleted Property is recorded as an instance whose value is urn:ngsi-ld:null, with deletedAt set.",
    feature="temporal",
    also=("5.7.3", "4.8"),
)
def deleted_property(k: Kit) -> None:
    last = _deleted(k, "temperature", {"type": "Property", "value": 20})
    k.expect(last.get("value") == NULL and "deletedAt" in last, f"the deletion instance is {last}")
    instant(k, last["deletedAt"])


@case(
    "4.5.8",
    "A deleted Relationship is recorded as an instance whose object is urn:ngsi-ld:null, with deletedAt set.",
    feature="temporal",
    also=("5.7.3", "4.8"),
)
def deleted_relationship(k: Kit) -> None:
    last = _deleted(k, "partOf", {"type": "Relationship", "object": "urn:ngsi-ld:Building:conformance"})
    k.expect(last.get("type") == "Relationship", f"the deletion instance is {last}, expected a Relationship")
    k.expect(last.get("object") == NULL and "deletedAt" in last, f"the deletion instance is {last}")


@case(
    "4.6.5",
    'A deleted LanguageProperty is recorded with the languageMap {"@none": "urn:ngsi-ld:null"} and deletedAt.',
    feature="temporal",
    also=("4.5.7", "5.7.3"),
)
def deleted_language_property(k: Kit) -> None:
    last = _deleted(k, "label", {"type": "LanguageProperty", "languageMap": {"en": "hall", "fr": "salle"}})
    k.expect(last.get("type") == "LanguageProperty", f"the deletion instance is {last}")
    k.expect(last.get("languageMap") == {"@none": NULL} and "deletedAt" in last, f"the deletion instance is {last}")


@case(
    "4.11",
    "timeproperty=deletedAt selects the instances that record a deletion, and only those.",
    feature="temporal",
    also=("4.5.7", "4.8", "5.7.3"),
)
def timeproperty_deleted_at(k: Kit) -> None:
    body = entity_with_history(
        k, {"id": k.uid("Sensor"), "type": k.type_name("Sensor"), "level": {"type": "Property", "value": 3}}
    )
    k.expect_status(k.http.delete(f"/entities/{body['id']}/attrs/level"), 204)
    params = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z", "timeproperty": "deletedAt"}
    found = instances(k, retrieve(k, body["id"], params), "level")
    k.expect(len(found) == 1 and found[0].get("value") == NULL, f"by deletedAt the instances are {found}")


def _simplified(k: Kit, member: dict[str, Any], attr: str = "reading") -> Any:
    body = create(k, {"id": k.uid("Sensor"), "type": k.type_name("Sensor"), attr: [member]})
    doc = retrieve(k, body["id"], {"format": "temporalValues"})
    return doc.get(attr)


@case(
    "4.5.9",
    "In temporalValues a Property is {type, values} with [value, observedAt] pairs.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def temporal_values_of_a_property(k: Kit) -> None:
    body = create(k)
    member = retrieve(k, body["id"], {"format": "temporalValues"}).get("temperature")
    k.expect(isinstance(member, dict) and member.get("type") == "Property", f"temperature is {member!r:.200}")
    pairs = sorted(member.get("values") or [], key=lambda p: instant(k, p[1]) if isinstance(p, list) else 0)
    expected = [[v, t] for v, t in zip((20, 21, 22), TIMES, strict=True)]
    k.expect([[p[0], instant(k, p[1])] for p in pairs] == [[v, instant(k, t)] for v, t in expected], f"{pairs}")


@case(
    "4.5.9",
    "In temporalValues a Relationship is {type, objects} with [object, observedAt] pairs.",
    feature="temporal",
    also=("5.7.3",),
)
def temporal_values_of_a_relationship(k: Kit) -> None:
    target = "urn:ngsi-ld:Building:conformance"
    member = _simplified(k, {"type": "Relationship", "object": target, "observedAt": TIMES[0]})
    k.expect(isinstance(member, dict) and member.get("type") == "Relationship", f"reading is {member!r:.200}")
    pairs = member.get("objects")
    k.expect(isinstance(pairs, list) and len(pairs) == 1 and pairs[0][0] == target, f"objects are {pairs!r:.200}")


@case(
    "4.5.9",
    'In temporalValues a LanguageProperty gives languageMaps pairs of {"languageMap": ...} and the time.',
    feature="temporal",
    also=("5.7.3",),
)
def temporal_values_of_a_language_property(k: Kit) -> None:
    names = {"en": "hall", "fr": "salle"}
    member = _simplified(k, {"type": "LanguageProperty", "languageMap": names, "observedAt": TIMES[0]})
    k.expect(isinstance(member, dict) and member.get("type") == "LanguageProperty", f"reading is {member!r:.200}")
    pairs = member.get("languageMaps")
    k.expect(
        isinstance(pairs, list) and len(pairs) == 1 and pairs[0][0] == {"languageMap": names},
        f"languageMaps are {pairs!r:.200}",
    )


@case(
    "4.5.9",
    "In temporalValues a ListProperty gives valueLists pairs of the ordered array and the time.",
    feature="temporal",
    also=("5.7.3",),
)
def temporal_values_of_a_list_property(k: Kit) -> None:
    member = _simplified(k, {"type": "ListProperty", "valueList": ["b", "a", "c"], "observedAt": TIMES[0]})
    k.expect(isinstance(member, dict) and member.get("type") == "ListProperty", f"reading is {member!r:.200}")
    pairs = member.get("valueLists")
    k.expect(isinstance(pairs, list) and pairs and pairs[0][0] == ["b", "a", "c"], f"valueLists are {pairs!r:.200}")


@case(
    "4.5.9",
    "In temporalValues a ListRelationship gives objectLists pairs of the ordered array of URIs and the time.",
    feature="temporal",
    also=("5.7.3",),
)
def temporal_values_of_a_list_relationship(k: Kit) -> None:
    targets = ["urn:ngsi-ld:Stop:conformance-2", "urn:ngsi-ld:Stop:conformance-1"]
    listed = {"type": "ListRelationship", "objectList": [{"object": t} for t in targets], "observedAt": TIMES[0]}
    member = _simplified(k, listed)
    k.expect(isinstance(member, dict) and member.get("type") == "ListRelationship", f"reading is {member!r:.200}")
    pairs = member.get("objectLists")
    k.expect(isinstance(pairs, list) and pairs and pairs[0][0] == targets, f"objectLists are {pairs!r:.200}")


@case(
    "4.5.9",
    "options=temporalValues selects the simplified temporal representation as format=temporalValues does.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def temporal_values_as_option(k: Kit) -> None:
    body = create(k)
    by_option = retrieve(k, body["id"], {"options": "temporalValues"})
    by_format = retrieve(k, body["id"], {"format": "temporalValues"})
    k.expect(by_option == by_format, f"options gave {by_option!r:.200}, format gave {by_format!r:.200}")
    k.expect("values" in (by_option.get("temperature") or {}), f"temperature is {by_option.get('temperature')!r}")


# -- partial answers (6.3.10) ----------------------------------------------------------------------------------------
MANY = 120
RANGE = re.compile(r"^date-time (\S+Z|\S+[+-]\d\d:\d\d)-(\S+Z|\S+[+-]\d\d:\d\d)/(\*|\d+)$")


def _many(k: Kit) -> tuple[dict[str, Any], list[str]]:
    """A temporal entity with MANY instances a minute apart (more than some brokers return at once)."""
    times = [f"2020-01-01T{10 + n // 60:02d}:{n % 60:02d}:00Z" for n in range(MANY)]
    body = {
        "id": k.uid("Sensor"),
        "type": k.type_name("Sensor"),
        "count": [observed(n, t) for n, t in enumerate(times)],
    }
    return create(k, body), times


def _content_range(k: Kit, response: httpx.Response) -> tuple[str, str, str]:
    header = response.headers.get("Content-Range", "")
    found = RANGE.match(header)
    k.expect(found is not None, f"a 206 answer has Content-Range {header!r}, expected 'date-time <start>-<end>/<size>'")
    assert found is not None
    return found.group(1), found.group(2), found.group(3)


@case(
    "6.3.10",
    "A temporal answer is whole (200, every instance of the interval) or partial (206 with a date-time Content-Range).",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def whole_or_partial_forwards(k: Kit) -> None:
    body, times = _many(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params=DAY)
    k.expect_status(response, 200, 206)
    got = values(k, k.json(response), "count")
    if response.status_code == 200:
        k.expect(got == list(range(MANY)), f"a 200 answer held {len(got)} of the {MANY} instances")
        return
    start, end, size = _content_range(k, response)
    k.expect(size == "*", f"without lastN the size is {size!r}, expected '*'")
    k.expect(0 < len(got) < MANY and got == list(range(len(got))), "forwards, a page holds the oldest instances")
    k.expect(instant(k, start) == instant(k, times[0]), f"the range starts at {start}, the oldest at {times[0]}")
    k.expect(instant(k, end) == instant(k, times[len(got) - 1]), f"the range ends at {end}, not at the last enclosed")


@case(
    "6.3.10",
    "With lastN a partial answer (206) holds the newest instances and its Content-Range size is lastN.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def whole_or_partial_last_n(k: Kit) -> None:
    body, times = _many(k)
    response = k.http.get(f"/temporal/entities/{body['id']}", params={"lastN": str(MANY)})
    k.expect_status(response, 200, 206)
    got = values(k, k.json(response), "count")
    if response.status_code == 200:
        k.expect(got == list(range(MANY)), f"a 200 answer to lastN={MANY} held {len(got)} instances")
        return
    start, end, size = _content_range(k, response)
    k.expect(size == str(MANY), f"the size is {size!r}, expected lastN ({MANY})")
    k.expect(0 < len(got) < MANY and got == list(range(MANY - len(got), MANY)), "backwards, a page holds the newest")
    k.expect(instant(k, start) == instant(k, times[-1]), f"backwards the range starts at {start}, the newest")
    k.expect(instant(k, end) == instant(k, times[MANY - len(got)]), f"the range ends at {end}, not the oldest enclosed")


@case(
    "6.3.10",
    "Paging forwards from the end of each partial answer's Content-Range reaches every instance of the interval.",
    feature="temporal",
    also=("5.7.3", "6.19"),
)
def paging_forwards_reaches_every_instance(k: Kit) -> None:
    body, _ = _many(k)
    seen: dict[str, Any] = {}
    params = dict(DAY)
    for _ in range(MANY):
        response = k.http.get(f"/temporal/entities/{body['id']}", params=params)
        k.expect_status(response, 200, 206)
        for inst in instances(k, k.json(response), "count"):
            seen[str(inst.get("instanceId"))] = inst.get("value")
        if response.status_code == 200:
            break
        _, end, _ = _content_range(k, response)
        k.expect(instant(k, end) > instant(k, params["timeAt"]), "a partial answer did not move the range on")
        params = {**DAY, "timeAt": end}
    k.expect(sorted(seen.values()) == list(range(MANY)), f"the pages held {len(seen)} of {MANY} instances")
