"""Query languages of NGSI-LD and their reference evaluator.

`parse_query(params, tm)` turns the (percent-decoded) query parameters of a request into one `Query` whose
parts hold expanded IRIs; `matches(entity, query)` says whether a canonical entity is selected. The parsers
raise BadRequestData for malformed input (quoting the offending fragment) and TooComplexQuery beyond the
bounds of `broker.query.common`.

    id, idPattern                   -> Query.ids, Query.id_pattern
    type                            -> Query.types        (broker.query.types, clause 4.17)
    q, expandValues                 -> Query.q            (broker.query.q, clause 4.9)
    scopeQ                          -> Query.scope        (broker.query.scope, clause 4.19)
    georel, geometry, coordinates,
    geoproperty                     -> Query.geo          (broker.query.geo, clause 4.10)
    pick, omit                      -> Query.pick/.omit   (broker.query.projection, clause 4.21)
    orderBy, collation              -> Query.order_by, Query.collation (projection, collation; clause 4.23)
    csf                             -> Query.csf          (a q over context sources, clause 4.9: syntax only)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from broker.core.errors import BadRequestData, TooComplexQuery
from broker.core.model import Entity
from broker.core.normalize import is_uri
from broker.ld.termmap import TermMap
from broker.query import evaluate as _evaluate
from broker.query.collation import ROOT, Collation, parse_collation
from broker.query.common import DEFAULT_LIMITS, MAX_DEPTH, MAX_TERMS, Limits, check_length, compile_regex, expand_name
from broker.query.evaluate import Resolver
from broker.query.geo import GeoQuery, matches_geo, parse_geo_query
from broker.query.projection import OrderKey, Projection, parse_order_by, parse_projection, project
from broker.query.q import QNode, parse_q
from broker.query.scope import ScopeExpr, matches_scope, parse_scope_query
from broker.query.types import TypeExpr, matches_types, parse_types

#: The request parameters `parse_query` reads; others are the caller's business.
QUERY_PARAMS: Final = frozenset(
    {
        "id",
        "idPattern",
        "type",
        "q",
        "expandValues",
        "jsonKeys",
        "scopeQ",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "pick",
        "omit",
        "orderBy",
        "collation",
        "csf",
    }
)


@dataclass(frozen=True, slots=True)
class Query:
    """Every selection and shaping part of an entity query; None (or empty) parts select everything."""

    ids: frozenset[str] | None = None
    id_pattern: re.Pattern[str] | None = None
    types: TypeExpr | None = None
    q: QNode | None = None
    scope: ScopeExpr | None = None
    geo: GeoQuery | None = None
    pick: Projection | None = None
    omit: Projection | None = None
    order_by: tuple[OrderKey, ...] = ()
    collation: Collation = ROOT
    expand_values: frozenset[str] | None = None
    #: The context source filter: it selects registrations, never entities (decision record 0017).
    csf: QNode | None = None


def _split_list(param: str, text: str, limits: Limits) -> list[str]:
    check_length(param, text, limits)
    items = text.split(",")
    if any(not item for item in items):
        raise BadRequestData(f"{param}: empty item in the comma-separated list {text!r}")
    if len(items) > limits.max_terms:
        raise TooComplexQuery(f"{param}: {len(items)} items, more than the {limits.max_terms} allowed")
    return items


def _id_pattern(text: str, limits: Limits) -> re.Pattern[str]:
    check_length("idPattern", text, limits)
    return compile_regex(text, "idPattern", limits)


def parse_query(params: Mapping[str, str], tm: TermMap, *, limits: Limits = DEFAULT_LIMITS) -> Query:
    """Parse the query parameters of a request (values already percent-decoded) with the request's TermMap."""
    get = params.get
    expand_values = None
    if (raw := get("expandValues")) is not None:
        expand_values = frozenset(expand_name(tm, n, "expandValues") for n in _split_list("expandValues", raw, limits))
    if (raw := get("jsonKeys")) is not None:
        # jsonKeys: values never expanded as JSON-LD (clause 6.4.3.2), whatever expandValues says (record 0012).
        json_keys = frozenset(expand_name(tm, n, "jsonKeys") for n in _split_list("jsonKeys", raw, limits))
        expand_values = expand_values - json_keys if expand_values is not None else None
    ids = get("id")
    id_list = _split_list("id", ids, limits) if ids is not None else None
    for entity_id in id_list or ():
        if not is_uri(entity_id):
            raise BadRequestData(f"id: {entity_id!r} is not a valid URI")
    return Query(
        ids=frozenset(id_list) if id_list is not None else None,
        id_pattern=_id_pattern(p, limits) if (p := get("idPattern")) is not None else None,
        types=parse_types(t, tm, limits=limits) if (t := get("type")) is not None else None,
        q=parse_q(q, tm, expand_values=expand_values, limits=limits) if (q := get("q")) is not None else None,
        scope=parse_scope_query(s, limits=limits) if (s := get("scopeQ")) is not None else None,
        geo=parse_geo_query(params, tm, limits=limits),
        pick=parse_projection(v, tm, param="pick", limits=limits) if (v := get("pick")) is not None else None,
        omit=parse_projection(v, tm, param="omit", limits=limits) if (v := get("omit")) is not None else None,
        order_by=parse_order_by(o, tm, limits=limits) if (o := get("orderBy")) is not None else (),
        collation=parse_collation(c) if (c := get("collation")) is not None else ROOT,
        expand_values=expand_values,
        csf=_parse_csf(f, tm, limits) if (f := get("csf")) is not None else None,
    )


def _parse_csf(text: str, tm: TermMap, limits: Limits) -> QNode:
    """csf has the grammar of q (clause 4.9); its errors name csf."""
    try:
        return parse_q(text, tm, limits=limits)
    except BadRequestData as exc:
        raise BadRequestData("csf" + exc.detail.removeprefix("q")) from None


def matches(entity: Entity, query: Query, *, resolve: Resolver | None = None) -> bool:
    """Whether `entity` is selected by every part of `query` (pick/omit/orderBy shape results, never select)."""
    if query.ids is not None and entity.get("id") not in query.ids:
        return False
    if query.id_pattern is not None and not query.id_pattern.search(str(entity.get("id", ""))):
        return False
    if query.types is not None and not matches_types(entity.get("type", []), query.types):
        return False
    if query.scope is not None and not matches_scope(entity.get("scope"), query.scope):
        return False
    if query.geo is not None and not matches_geo(entity, query.geo):
        return False
    return query.q is None or _evaluate.matches(entity, query.q, resolve=resolve)


__all__ = [
    "MAX_DEPTH",
    "MAX_TERMS",
    "QUERY_PARAMS",
    "Collation",
    "GeoQuery",
    "Limits",
    "OrderKey",
    "Projection",
    "QNode",
    "Query",
    "Resolver",
    "ScopeExpr",
    "TypeExpr",
    "matches",
    "parse_query",
    "project",
]
