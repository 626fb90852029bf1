"""Temporal entities and checks shared by the temporal case modules (no cases here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from conformance.kit import CaseFailed, Kit

#: Three observations an hour apart, and instants around them.
TIMES = ("2020-01-01T10:00:00Z", "2020-01-01T11:00:00Z", "2020-01-01T12:00:00Z")
DAY_START, DAY_END = "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"
#: A temporal restriction every instance of the cases meets.
EVER = {"timerel": "before", "timeAt": "2030-01-01T00:00:00Z"}
#: The whole day of TIMES.
DAY = {"timerel": "between", "timeAt": DAY_START, "endTimeAt": DAY_END}


def observed(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


def sensor(k: Kit, values: tuple[Any, ...] = (20, 21, 22), **attrs: Any) -> dict[str, Any]:
    """A temporal entity whose `temperature` has one instance per value, observed at TIMES (an hour apart)."""
    return {
        "id": k.uid("Sensor"),
        "type": k.type_name("Sensor"),
        "temperature": [observed(v, t) for v, t in zip(values, TIMES, strict=False)],
        **attrs,
    }


def create(k: Kit, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST the temporal entity (201 expected; "not implemented" without a temporal API); deleted after the case."""
    body = body if body is not None else sensor(k)
    response = k.post("/temporal/entities", body)
    k.not_implemented_if(response, "temporal")
    k.expect_status(response, 201)
    k.delete_later(f"/temporal/entities/{body['id']}")
    k.delete_later(f"/entities/{body['id']}")
    return body


def entity_with_history(k: Kit, body: dict[str, Any]) -> dict[str, Any]:
    """Create an entity through the entity API (its history is then the temporal evolution), cleaned up after."""
    probe = k.http.get("/temporal/entities", params={"type": "ConfProbe", **EVER})
    k.not_implemented_if(probe, "temporal")
    k.delete_later(f"/temporal/entities/{body['id']}")  # after the entity's deletion, which adds to the history
    k.entity(body)
    return body


def retrieve(k: Kit, entity_id: str, params: dict[str, str] | None = None, status: int = 200) -> Any:
    response = k.http.get(f"/temporal/entities/{entity_id}", params=params or {})
    k.expect_status(response, status)
    doc = k.json(response)
    k.expect(isinstance(doc, dict), f"the temporal entity is {doc!r:.200}, expected a JSON object")
    return doc


def instances(k: Kit, entity: Any, attr: str) -> list[dict[str, Any]]:
    """The instances of `attr` in a normalized temporal entity (one instance may be given as an object)."""
    k.expect(isinstance(entity, dict), "a temporal entity is a JSON object")
    member = entity.get(attr)
    if isinstance(member, dict):
        member = [member]
    k.expect(isinstance(member, list), f"{attr} is {member!r:.200}, expected its instances")
    return [i for i in member if isinstance(i, dict)]


def values(k: Kit, entity: Any, attr: str = "temperature") -> list[Any]:
    """The values of `attr`'s instances, in the order of their observedAt."""
    found = instances(k, entity, attr)
    return [i.get("value") for i in sorted(found, key=lambda i: instant(k, i.get("observedAt")))]


def instant(k: Kit, text: Any) -> datetime:
    """A DateTime of the answer as an instant (any precision or offset the broker writes)."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise CaseFailed(f"{text!r} is not a DateTime") from None


def instance_ids(k: Kit, entity_id: str, attr: str = "temperature") -> list[str]:
    """The instanceIds of `attr`, in the order of their observedAt."""
    found = sorted(instances(k, retrieve(k, entity_id), attr), key=lambda i: instant(k, i.get("observedAt")))
    ids = [str(i["instanceId"]) for i in found if isinstance(i.get("instanceId"), str)]
    k.expect(len(ids) == len(found), "an instance has no instanceId (clause 4.5.7)")
    return ids


def problem(k: Kit, response: httpx.Response, status: int, error_type: str) -> None:
    k.not_implemented_if(response, "temporal")
    k.expect_problem(response, status, error_type)
