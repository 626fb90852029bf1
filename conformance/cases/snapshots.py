"""Snapshots (clauses 5.16, 5.5.15, 5.2.42; HTTP binding 6.36-6.38): an optional feature, "not implemented" when the
broker has no /snapshots resource.

The content of a snapshot is read with the NGSILD-Snapshot request header, the way implementations bind the
Snapshot of clause 5.5.15 ("how the Snapshot identifier is specified for an API operation is protocol binding
specific"). A broker may fill a snapshot in the background: the cases wait until its snapshotStatus is no longer
"preparing" before they read it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from conformance.cases._shared import ids, prop, vehicle
from conformance.kit import Kit, case

FEATURE = "snapshots"
HEADER = "NGSILD-Snapshot"


def _query(entity_type: str, q: str | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {"type": "Query", "entities": [{"type": entity_type}]}
    if q is not None:
        query["q"] = q
    return query


def _body(k: Kit, entity_type: str, q: str | None = None, **members: Any) -> dict[str, Any]:
    return {"id": k.uid("Snapshot"), "type": "Snapshot", "snapshotQueries": [_query(entity_type, q)], **members}


def _create(k: Kit, body: dict[str, Any]) -> httpx.Response:
    response = k.post("/snapshots", body)
    k.not_implemented_if(response, FEATURE)
    if response.status_code == 201:
        k.delete_later(f"/snapshots/{body.get('id') or _id_of(response)}")
    return response


def _id_of(response: httpx.Response) -> str:
    location: str = response.headers.get("Location", "")
    return location.rstrip("/").rsplit("/snapshots/", 1)[-1]


def _snapshot(k: Kit, entity_type: str, q: str | None = None, **members: Any) -> str:
    """A snapshot of the entities of `entity_type` (meeting `q`) that the case deletes afterwards; its id."""
    body = _body(k, entity_type, q, **members)
    k.expect_status(_create(k, body), 201)
    return str(body["id"])


def _ready(k: Kit, snapshot_id: str) -> dict[str, Any]:
    """The status of a snapshot once its queries ran (5.16.1 lets them run in the background)."""
    deadline = time.monotonic() + max(k.run.notify_timeout, 5.0)
    while True:
        response = k.http.get(f"/snapshots/{snapshot_id}")
        k.expect_status(response, 200)
        status = k.json(response)
        k.expect(isinstance(status, dict), "a Snapshot status is a JSON object")
        if status.get("snapshotStatus") != "preparing" or time.monotonic() > deadline:
            return dict(status)
        time.sleep(0.05)


def _on(snapshot_id: str) -> dict[str, str]:
    return {HEADER: snapshot_id}


def _fleet(k: Kit, speeds: list[int]) -> tuple[str, list[dict[str, Any]]]:
    entity_type = k.type_name("Vehicle")
    bodies = [vehicle(k, entity_type, speed=prop(speed)) for speed in speeds]
    for body in bodies:
        k.entity(body)
    return entity_type, bodies


# -- /snapshots (6.36) ---------------------------------------------------------------------------------------------
@case(
    "6.36",
    "POST /snapshots answers 201 Created with a Location header holding the relative path of the created snapshot.",
    feature=FEATURE,
    also=("5.16.1",),
)
def create_answers_201_with_location(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    body = _body(k, entity_type)
    response = _create(k, body)
    k.expect_status(response, 201)
    location = response.headers.get("Location", "")
    k.expect(location.endswith(f"/snapshots/{body['id']}"), f"Location {location!r} does not name the snapshot")


@case(
    "6.36",
    "Creating a snapshot with the identifier of an existing one answers 409 with AlreadyExists.",
    feature=FEATURE,
    also=("6.3.2",),
)
def create_with_taken_id_is_409(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    body = _body(k, entity_type)
    k.expect_status(_create(k, body), 201)
    k.expect_problem(k.post("/snapshots", body), 409, "AlreadyExists")


@case(
    "5.5.15",
    "A snapshot created without snapshotPriority has the default priority 5.",
    feature=FEATURE,
    also=("5.16.3",),
)
def default_priority_is_5(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    status = _ready(k, _snapshot(k, entity_type))
    k.expect(status.get("snapshotPriority") == 5, f"snapshotPriority is {status.get('snapshotPriority')!r}, not 5")


@case(
    "5.5.15",
    "A snapshotPriority outside the range 1 (minimum) to 10 (maximum) is refused with 400 BadRequestData.",
    feature=FEATURE,
    also=("6.36", "5.16.1"),
)
def priority_out_of_range_is_400(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    for priority in (0, 11):
        response = _create(k, _body(k, entity_type, snapshotPriority=priority))
        k.expect_problem(response, 400, "BadRequestData")


@case(
    "6.36",
    "A snapshot body that is not a JSON object is refused with 400 BadRequestData.",
    feature=FEATURE,
    also=("5.16.1",),
)
def create_with_non_object_body_is_400(k: Kit) -> None:
    response = k.post("/snapshots", ["not", "a", "Snapshot"])
    k.not_implemented_if(response, FEATURE)
    k.expect_problem(response, 400)


# -- /snapshots/{snapshotId} (6.37): status ------------------------------------------------------------------------
@case(
    "6.37",
    "GET /snapshots/{snapshotId} answers 200 with the Snapshot status: its id and type Snapshot.",
    feature=FEATURE,
    also=("5.16.3",),
)
def retrieve_status(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    snapshot_id = _snapshot(k, entity_type)
    status = _ready(k, snapshot_id)
    k.expect(status.get("id") == snapshot_id, f"the status names {status.get('id')!r}, not {snapshot_id}")
    k.expect(status.get("type") == "Snapshot", f"the status has type {status.get('type')!r}, not Snapshot")


@case(
    "5.2.42",
    "Once its queries ran, the status of a snapshot whose query matched entities reports resultStatus success for it.",
    feature=FEATURE,
    also=("5.16.1", "5.16.3"),
)
def details_report_success(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    status = _ready(k, _snapshot(k, entity_type))
    details = status.get("snapshotQueriesDetails")
    if not isinstance(details, list) or len(details) != 1 or not isinstance(details[0], dict):
        k.fail(f"snapshotQueriesDetails is {details!r}, not one ExecutionResultDetails")
    else:
        found = details[0].get("resultStatus")
        k.expect(found == "success", f"resultStatus is {found!r}, not success")


@case(
    "5.2.42",
    "Once its queries ran, the status of a snapshot whose query matched nothing reports resultStatus empty for it.",
    feature=FEATURE,
    also=("5.16.1", "5.16.3"),
)
def details_report_empty(k: Kit) -> None:
    status = _ready(k, _snapshot(k, k.type_name("Nothing")))
    details = status.get("snapshotQueriesDetails")
    if not isinstance(details, list) or len(details) != 1 or not isinstance(details[0], dict):
        k.fail(f"snapshotQueriesDetails is {details!r}, not one ExecutionResultDetails")
    else:
        found = details[0].get("resultStatus")
        k.expect(found == "empty", f"resultStatus is {found!r}, not empty")


@case(
    "5.16.3",
    "Retrieving the status of a snapshot the system does not know answers 404 with ResourceNotFound.",
    feature=FEATURE,
    also=("6.37",),
)
def retrieve_unknown_is_404(k: Kit) -> None:
    k.expect_problem(k.http.get(f"/snapshots/{k.uid('Snapshot')}"), 404, "ResourceNotFound")


@case(
    "5.16.3",
    "Retrieving a snapshot by an id that is not a valid URI answers 400 with BadRequestData.",
    feature=FEATURE,
    also=("6.37",),
)
def retrieve_invalid_id_is_400(k: Kit) -> None:
    k.expect_problem(k.http.get("/snapshots/not%20a%20uri"), 400, "BadRequestData")


@case(
    "5.16.4",
    "PATCH /snapshots/{snapshotId} with a new snapshotPriority answers 200 with the updated Snapshot status.",
    feature=FEATURE,
    also=("6.37",),
)
def update_priority(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    snapshot_id = _snapshot(k, entity_type)
    _ready(k, snapshot_id)
    response = k.patch(f"/snapshots/{snapshot_id}", {"snapshotPriority": 8})
    k.expect_status(response, 200)
    body = k.json(response)
    k.expect(isinstance(body, dict) and body.get("snapshotPriority") == 8, f"the answer shows {body!r}")
    k.expect(_ready(k, snapshot_id).get("snapshotPriority") == 8, "the stored status still has the old priority")


@case(
    "5.16.4",
    "Updating the status of a snapshot the system does not know answers 404 with ResourceNotFound.",
    feature=FEATURE,
    also=("6.37",),
)
def update_unknown_is_404(k: Kit) -> None:
    response = k.patch(f"/snapshots/{k.uid('Snapshot')}", {"snapshotPriority": 3})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "5.16.4",
    "A Snapshot fragment that changes the snapshot's queries, which cannot be updated, is refused with 400 "
    "BadRequestData.",
    feature=FEATURE,
    also=("6.37",),
)
def update_of_queries_is_400(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    snapshot_id = _snapshot(k, entity_type)
    _ready(k, snapshot_id)
    response = k.patch(f"/snapshots/{snapshot_id}", {"snapshotQueries": [_query(k.type_name("Other"))]})
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.16.5",
    "DELETE /snapshots/{snapshotId} answers 204, and the snapshot is gone afterwards (404).",
    feature=FEATURE,
    also=("6.37",),
)
def delete_snapshot(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    snapshot_id = _snapshot(k, entity_type)
    _ready(k, snapshot_id)
    k.expect_status(k.http.delete(f"/snapshots/{snapshot_id}"), 204)
    k.expect_problem(k.http.get(f"/snapshots/{snapshot_id}"), 404, "ResourceNotFound")


@case(
    "5.16.5",
    "Deleting a snapshot the system does not know answers 404 with ResourceNotFound.",
    feature=FEATURE,
    also=("6.37",),
)
def delete_unknown_is_404(k: Kit) -> None:
    k.expect_problem(k.http.delete(f"/snapshots/{k.uid('Snapshot')}"), 404, "ResourceNotFound")


# -- Purge Snapshots (6.36.3.2, 5.16.7) ----------------------------------------------------------------------------
@case(
    "5.16.7",
    "DELETE /snapshots without an NGSI-LD query q is refused with 400 BadRequestData.",
    feature=FEATURE,
    also=("6.36",),
)
def purge_without_q_is_400(k: Kit) -> None:
    response = k.http.delete("/snapshots")
    k.not_implemented_if(response, FEATURE)
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.16.7",
    "A purge whose q names something other than a member of the Snapshot data type is refused with 400 BadRequestData.",
    feature=FEATURE,
    also=("6.36",),
)
def purge_q_on_other_members_is_400(k: Kit) -> None:
    response = k.http.delete("/snapshots", params={"q": f"{k.attr_name('speed')}>50"})
    k.not_implemented_if(response, FEATURE)
    k.expect_problem(response, 400, "BadRequestData")


@case(
    "5.16.7",
    "A purge deletes the snapshots whose members meet its q (204) and leaves the others.",
    feature=FEATURE,
    also=("6.36",),
)
def purge_deletes_what_q_selects(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    # An endpoint of this case only (nothing listens there), so that the purge reaches no other snapshot.
    endpoint = f"http://127.0.0.1:9/{k.uid('Endpoint').rsplit(':', 1)[-1]}"
    low = _snapshot(k, entity_type, snapshotPriority=1, endpoint=endpoint)
    high = _snapshot(k, entity_type, snapshotPriority=9, endpoint=endpoint)
    _ready(k, low)
    _ready(k, high)
    response = k.http.delete("/snapshots", params={"q": f'snapshotPriority<5;endpoint=="{endpoint}"'})
    k.expect_status(response, 204)
    k.expect_problem(k.http.get(f"/snapshots/{low}"), 404, "ResourceNotFound")
    k.expect_status(k.http.get(f"/snapshots/{high}"), 200)


@case(
    "6.36",
    "A purge whose q matches no snapshot answers 404 Not Found.",
    feature=FEATURE,
    also=("5.16.7",),
)
def purge_matching_nothing_is_404(k: Kit) -> None:
    endpoint = f"http://127.0.0.1:9/{k.uid('Endpoint').rsplit(':', 1)[-1]}"
    response = k.http.delete("/snapshots", params={"q": f'endpoint=="{endpoint}"'})
    k.not_implemented_if(response, FEATURE)
    k.expect_problem(response, 404)


# -- Clone Snapshot (6.38, 5.16.2) ---------------------------------------------------------------------------------
@case(
    "6.38",
    "POST /snapshots/{snapshotId}/clone answers 201 with a Location naming the clone, whose status can be retrieved.",
    feature=FEATURE,
    also=("5.16.2",),
)
def clone_answers_201(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    source = _snapshot(k, entity_type)
    _ready(k, source)
    clone_id = k.uid("Snapshot")
    response = k.post(f"/snapshots/{source}/clone", {"id": clone_id, "type": "Snapshot"})
    k.expect_status(response, 201)
    k.delete_later(f"/snapshots/{clone_id}")
    location = response.headers.get("Location", "")
    k.expect(location.endswith(f"/snapshots/{clone_id}"), f"Location {location!r} does not name the clone")
    k.expect(_ready(k, clone_id).get("id") == clone_id, "the clone's status does not name it")


@case(
    "6.38",
    "Cloning a snapshot the system does not know answers 404 with ResourceNotFound.",
    feature=FEATURE,
    also=("5.16.2",),
)
def clone_unknown_is_404(k: Kit) -> None:
    response = k.post(f"/snapshots/{k.uid('Snapshot')}/clone", {"type": "Snapshot"})
    k.expect_problem(response, 404, "ResourceNotFound")


@case(
    "6.38",
    "Cloning onto the identifier of an existing snapshot answers 409 with AlreadyExists.",
    feature=FEATURE,
    also=("5.16.2",),
)
def clone_onto_taken_id_is_409(k: Kit) -> None:
    entity_type, _ = _fleet(k, [10])
    source = _snapshot(k, entity_type)
    other = _snapshot(k, entity_type)
    _ready(k, source)
    response = k.post(f"/snapshots/{source}/clone", {"id": other, "type": "Snapshot"})
    k.expect_problem(response, 409, "AlreadyExists")


# -- operations on a snapshot (5.5.15) -----------------------------------------------------------------------------
@case(
    "5.5.15",
    "A query on a snapshot sees only the entities the snapshot's queries selected, not the other live ones.",
    feature=FEATURE,
    also=("5.16.1", "6.4"),
)
def query_on_snapshot_sees_its_entities(k: Kit) -> None:
    entity_type, bodies = _fleet(k, [80, 20])
    snapshot_id = _snapshot(k, entity_type, "speed>50")
    _ready(k, snapshot_id)
    found = k.query({"type": entity_type}, headers=_on(snapshot_id))
    k.expect(ids(found) == {bodies[0]["id"]}, f"the snapshot holds {sorted(ids(found))}, not {bodies[0]['id']}")


@case(
    "5.5.15",
    "A change of a live entity after a snapshot was made does not change the entity as the snapshot holds it.",
    feature=FEATURE,
    also=("5.16.1", "6.5"),
)
def snapshot_is_frozen(k: Kit) -> None:
    entity_type, bodies = _fleet(k, [80])
    snapshot_id = _snapshot(k, entity_type)
    _ready(k, snapshot_id)
    k.expect_status(k.patch(f"/entities/{bodies[0]['id']}/attrs", {"speed": prop(5)}), 204)
    response = k.http.get(f"/entities/{bodies[0]['id']}", headers=_on(snapshot_id))
    k.expect_status(response, 200)
    held = k.json(response)
    k.expect(held.get("speed", {}).get("value") == 80, f"the snapshot shows speed {held.get('speed')!r}, not 80")


@case(
    "5.5.15",
    "A change made on a snapshot stays in the snapshot: the live entity keeps its value.",
    feature=FEATURE,
    also=("6.7",),
)
def writes_on_snapshot_stay_there(k: Kit) -> None:
    entity_type, bodies = _fleet(k, [80])
    snapshot_id = _snapshot(k, entity_type)
    _ready(k, snapshot_id)
    patch = k.patch(f"/entities/{bodies[0]['id']}/attrs", {"speed": prop(99)}, headers=_on(snapshot_id))
    k.expect_status(patch, 204)
    live = k.get_entity(bodies[0]["id"])
    k.expect(live.get("speed", {}).get("value") == 80, f"the live entity shows {live.get('speed')!r}, not 80")


@case(
    "5.16.2",
    "A clone holds the content of its source, and keeps it after the source is deleted.",
    feature=FEATURE,
    also=("6.38", "5.5.15", "5.16.5"),
)
def clone_outlives_its_source(k: Kit) -> None:
    entity_type, bodies = _fleet(k, [80, 20])
    source = _snapshot(k, entity_type)
    _ready(k, source)
    clone_id = k.uid("Snapshot")
    k.expect_status(k.post(f"/snapshots/{source}/clone", {"id": clone_id, "type": "Snapshot"}), 201)
    k.delete_later(f"/snapshots/{clone_id}")
    _ready(k, clone_id)
    k.expect_status(k.http.delete(f"/snapshots/{source}"), 204)
    found = k.query({"type": entity_type}, headers=_on(clone_id))
    k.expect(ids(found) == {b["id"] for b in bodies}, f"the clone holds {sorted(ids(found))}")


@case(
    "5.5.15",
    "The temporal evolution of a snapshot made with snapshotTemporalQueries holds the instances their temporalQ "
    "selected.",
    feature=FEATURE,
    also=("5.16.1", "5.7.3", "6.19"),
)
def temporal_queries_capture_the_evolution(k: Kit) -> None:
    entity_type = k.type_name("Meter")
    entity_id = k.uid("Meter")
    for day, value in ((1, 10), (2, 20), (3, 30)):
        observed = prop(value, observedAt=f"2026-01-0{day}T00:00:00Z")
        response = k.post("/temporal/entities", {"id": entity_id, "type": entity_type, "power": observed})
        k.not_implemented_if(response, "temporal")
        k.expect_status(response, 201, 204)
    k.delete_later(f"/temporal/entities/{entity_id}")
    query = {**_query(entity_type), "temporalQ": {"timerel": "after", "timeAt": "2026-01-02T00:00:00Z"}}
    snapshot_id = k.uid("Snapshot")
    body = {"id": snapshot_id, "type": "Snapshot", "snapshotTemporalQueries": [query]}
    k.expect_status(_create(k, body), 201)
    _ready(k, snapshot_id)
    response = k.http.get(f"/temporal/entities/{entity_id}", headers=_on(snapshot_id))
    k.expect_status(response, 200)
    instances = k.json(response).get("power", [])
    values = sorted(i.get("value") for i in (instances if isinstance(instances, list) else [instances]))
    k.expect(values == [20, 30], f"the snapshot's evolution holds {values}, not [20, 30]")
