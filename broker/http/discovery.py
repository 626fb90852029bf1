"""Routes of /types, /types/{type}, /attributes, /attributes/{attrId} (clauses 6.25 to 6.28)."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.core.discovery import AttributeInfo, TypeInfo
from broker.http import params as P
from broker.http.entities import caller_of, origin_of, request_context, with_warnings
from broker.http.negotiation import negotiate
from broker.http.render import ld_response
from broker.http.state import state_of
from broker.ld.termmap import TermMap

BASE = "/ngsi-ld/v1"


def _list_id(kind: str, names: list[str]) -> str:
    """A stable id for a generated list: the same content gets the same URN."""
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]
    return f"urn:ngsi-ld:{kind}:{digest}"


def _entity_type(info: TypeInfo, tm: TermMap) -> dict[str, Any]:
    return {
        "id": info.iri,
        "type": "EntityType",
        "typeName": tm.compact_iri(info.iri),
        "attributeNames": [tm.compact_iri(a) for a in sorted(info.attributes)],
    }


def _attribute(info: AttributeInfo, tm: TermMap) -> dict[str, Any]:
    return {
        "id": info.iri,
        "type": "Attribute",
        "attributeName": tm.compact_iri(info.iri),
        "attributeCount": info.attribute_count,
        "attributeTypes": sorted(info.attribute_types),
        "typeNames": [tm.compact_iri(t) for t in sorted(info.type_names)],
    }


async def list_types(request: Request) -> Response:
    """GET /types: an EntityTypeList, or with details=true every EntityType."""
    return await _listing(
        request, "EntityTypeList", "typeList", _entity_type, lambda s, c, *o: s.discovery.types(c, *o)
    )


async def type_info(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    media = negotiate(request)
    tm = await request_context(request, state)
    warnings: list[str] = []
    type_iri = tm.expand_term(request.path_params["type"])
    info = await state.discovery.type_info(caller_of(request), type_iri, origin_of(request, tm), warnings)
    body = {
        "id": info.iri,
        "type": "EntityTypeInfo",
        "typeName": tm.compact_iri(info.iri),
        "entityCount": info.entity_count,
        "attributeDetails": [
            {"id": attr, "type": "Attribute", "attributeName": tm.compact_iri(attr), "attributeTypes": sorted(kinds)}
            for attr, kinds in sorted(info.attributes.items())
        ],
    }
    return with_warnings(ld_response(request, body, tm, media), tuple(warnings))


async def list_attributes(request: Request) -> Response:
    """GET /attributes: an AttributeList, or with details=true every Attribute."""
    return await _listing(
        request, "AttributeList", "attributeList", _attribute, lambda s, c, *o: s.discovery.attributes(c, *o)
    )


async def _listing(request: Request, kind: str, member: str, detail: Any, fetch: Any) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"details", "local"}))
    media = negotiate(request)
    tm = await request_context(request, state)
    warnings: list[str] = []
    infos = await fetch(state, caller_of(request), origin_of(request, tm), warnings)
    if P.flag(request, "details"):
        return with_warnings(ld_response(request, [detail(i, tm) for i in infos], tm, media), tuple(warnings))
    names = [tm.compact_iri(i.iri) for i in infos]
    body = {"id": _list_id(kind, names), "type": kind, member: names}
    return with_warnings(ld_response(request, body, tm, media), tuple(warnings))


async def attribute_info(request: Request) -> Response:
    state = state_of(request)
    P.check_params(request, frozenset({"local"}))
    media = negotiate(request)
    tm = await request_context(request, state)
    warnings: list[str] = []
    attr_iri = tm.expand_term(request.path_params["attr"])
    info = await state.discovery.attribute_info(caller_of(request), attr_iri, origin_of(request, tm), warnings)
    return with_warnings(ld_response(request, _attribute(info, tm), tm, media), tuple(warnings))


ROUTES = [
    Route(f"{BASE}/types", list_types, methods=["GET"]),
    Route(f"{BASE}/types/{{type:rest}}", type_info, methods=["GET"]),
    Route(f"{BASE}/attributes", list_attributes, methods=["GET"]),
    Route(f"{BASE}/attributes/{{attr:rest}}", attribute_info, methods=["GET"]),
]
