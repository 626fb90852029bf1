"""The Query data type of a POST /entityOperations/query body (clause 5.2.23) as query parameters.

The body says in JSON what GET /entities says in its URL; turning it into the same parameters lets one parser
(broker.query) and one evaluator serve both. Each EntitySelector becomes one set of parameters.
"""

from __future__ import annotations

from typing import Any

import orjson

from broker.core.errors import BadRequestData

_SELECTOR_MEMBERS = frozenset({"id", "idPattern", "type"})
_MEMBERS = frozenset(
    {
        "type",
        "entities",
        "attrs",
        "pick",
        "omit",
        "q",
        "geoQ",
        "scopeQ",
        "lang",
        "temporalQ",
        "csf",
        "local",
        "expandValues",
        "orderBy",
        "@context",
    }
)
_GEO_MEMBERS = frozenset({"geometry", "coordinates", "georel", "geoproperty"})


#: Table 5.2.21-1: the members of a TemporalQuery (lastN and the aggregation parameters too, as of V1.9.1).
_TEMPORAL_MEMBERS = frozenset(
    {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods", "aggrPeriodDuration"}
)


def query_body_params(body: Any, *, temporal: bool = False) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(one parameter dict per EntitySelector, the projection/lang parameters) of a Query body. With `temporal`
    (POST /temporal/entityOperations/query, clause 6.24) the temporalQ members join the projection parameters."""
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('a query body is a JSON object with "type": "Query"')
    unknown = sorted(set(body) - _MEMBERS)
    if unknown:
        raise BadRequestData(f"unknown member(s) of Query: {', '.join(unknown)}")
    if not temporal and "temporalQ" in body:
        raise BadRequestData("Query.temporalQ is not supported on this endpoint")
    common: dict[str, str] = {}
    # csf selects context sources (decision record 0017): parsed like q, it changes nothing without registrations.
    for member in ("q", "scopeQ", "orderBy", "csf"):
        if member in body:
            common[member] = _string(body[member], member)
    for member in ("expandValues",):
        if member in body:
            common[member] = _names(body[member], member)
    if "geoQ" in body:
        common.update(_geo(body["geoQ"]))
    selection = {m: _names(body[m], m) for m in ("attrs", "pick", "omit") if m in body}
    if "lang" in body:
        selection["lang"] = _string(body["lang"], "lang")
    if temporal and "temporalQ" in body:
        selection.update(_temporal_q(body["temporalQ"]))
    if "local" in body:
        if not isinstance(body["local"], bool):
            raise BadRequestData("Query.local is true or false")
        selection["local"] = "true" if body["local"] else "false"
    selectors = body.get("entities")
    if selectors is None:
        return [common], selection
    if not isinstance(selectors, list) or not selectors:
        raise BadRequestData("Query.entities is a non-empty array of EntitySelectors")
    return [{**common, **_selector(s)} for s in selectors], selection


def _selector(selector: Any) -> dict[str, str]:
    if not isinstance(selector, dict) or not selector or set(selector) - _SELECTOR_MEMBERS:
        raise BadRequestData("an EntitySelector is a JSON object with id, idPattern and/or type")
    return {member: _string(value, f"entities.{member}") for member, value in selector.items()}


def _geo(geo: Any) -> dict[str, str]:
    if not isinstance(geo, dict) or set(geo) - _GEO_MEMBERS or not {"geometry", "coordinates", "georel"} <= set(geo):
        raise BadRequestData("Query.geoQ needs geometry, coordinates and georel (and optionally geoproperty)")
    coordinates = geo["coordinates"]
    return {
        "georel": _string(geo["georel"], "geoQ.georel"),
        "geometry": _string(geo["geometry"], "geoQ.geometry"),
        "coordinates": coordinates if isinstance(coordinates, str) else orjson.dumps(coordinates).decode(),
        **({"geoproperty": _string(geo["geoproperty"], "geoQ.geoproperty")} if "geoproperty" in geo else {}),
    }


def _temporal_q(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) - _TEMPORAL_MEMBERS:
        raise BadRequestData(
            "Query.temporalQ is a JSON object with timerel, timeAt, endTimeAt, timeproperty, lastN, aggrMethods and "
            "aggrPeriodDuration (Table 5.2.21-1)"
        )
    out = {}
    for member, v in value.items():
        if member == "lastN" and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)  # a positive integer in JSON; checked with the URL parameter of the same name
        elif member == "aggrMethods" and isinstance(v, list) and all(isinstance(m, str) for m in v):
            v = ",".join(v)
        out[member] = _string(v, f"temporalQ.{member}")
    return out


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"Query.{where} is a non-empty string")
    return value


def _names(value: Any, where: str) -> str:
    """An attribute list given as a JSON array of names or as one comma-separated string."""
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return ",".join(value)
    return _string(value, where)
