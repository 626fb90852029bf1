"""`agora register`: register another broker (or any NGSI-LD context source) with a broker, clauses 5.9.2 and
6.8.3.1. The registration comes from a file (a CSourceRegistration as JSON) or is built from flags; flags given
with a file override its members. The broker validates it (records 0160-0166): its error is printed as is."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

MODES = ("inclusive", "exclusive", "redirect", "auxiliary")


def add_subcommand(sub: Any) -> None:
    reg = sub.add_parser(
        "register",
        help="register a context source (another broker) with a broker",
        description="Create a context source registration (NGSI-LD clause 5.9.2) at --broker, from FILE or from "
        "flags (flags override FILE's members). Prints the registration's id; exit 0 when created, 1 when the "
        "broker refused it (its error is printed), 2 on bad arguments. The broker then forwards the reads and "
        "writes the registration covers to the source and merges the answers (see the README, 'Federate another "
        "broker').",
    )
    reg.add_argument("file", metavar="FILE", nargs="?", help="a CSourceRegistration as JSON ('-': standard input)")
    reg.add_argument("--broker", help="broker base URL, e.g. http://127.0.0.1:1026 (required unless --dry-run)")
    reg.add_argument("--tenant", help="tenant of the broker to register in (NGSILD-Tenant header)")
    reg.add_argument("--context", help="@context URL the names are written in (sent as the Link header)")
    reg.add_argument("--endpoint", help="the source's NGSI-LD base URL, e.g. http://water.example:1026")
    reg.add_argument("--type", action="append", default=[], help="entity type the source holds (repeatable)")
    reg.add_argument("--entity-id", action="append", default=[], help="entity id the source holds (repeatable)")
    reg.add_argument("--id-pattern", help="regular expression of the entity ids the source holds")
    reg.add_argument("--property", action="append", default=[], help="property name the source holds (repeatable)")
    reg.add_argument(
        "--relationship", action="append", default=[], help="relationship name the source holds (repeatable)"
    )
    reg.add_argument("--mode", choices=MODES, help="distributed operation mode (default inclusive)")
    reg.add_argument("--operations", help="comma-separated operation names or groups (default federationOps)")
    reg.add_argument("--id", dest="registration_id", help="the registration's id (default: the broker assigns one)")
    reg.add_argument("--name", help="registrationName")
    reg.add_argument("--description", help="description")
    reg.add_argument("--source-tenant", help="tenant to use at the source (the registration's tenant member)")
    reg.add_argument("--expires-at", help="expiresAt, an ISO 8601 DateTime")
    reg.add_argument("--timeout", type=float, help="management.timeout: milliseconds a forwarded request may take")
    reg.add_argument("--cooldown", type=float, help="management.cooldown: milliseconds to wait after a failure")
    reg.add_argument(
        "--info",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="contextSourceInfo entry sent to the source, e.g. Authorization=urn:ngsi-ld:request (repeatable)",
    )
    reg.add_argument("--dry-run", action="store_true", help="print the registration as JSON, send nothing")


def _from_file(name: str) -> dict[str, Any]:
    text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("the file must hold one JSON object (a CSourceRegistration)")
    return doc


def build(args: argparse.Namespace) -> dict[str, Any]:
    """The registration the arguments describe (ValueError for what cannot make one)."""
    doc: dict[str, Any] = _from_file(args.file) if args.file else {}
    doc.setdefault("type", "ContextSourceRegistration")
    info = _information(args)
    if info:
        doc["information"] = [info]
    simple = {
        "id": args.registration_id,
        "endpoint": args.endpoint,
        "mode": args.mode,
        "registrationName": args.name,
        "description": args.description,
        "tenant": args.source_tenant,
        "expiresAt": args.expires_at,
    }
    doc.update({k: v for k, v in simple.items() if v is not None})
    if args.operations:
        doc["operations"] = [op.strip() for op in args.operations.split(",") if op.strip()]
    management = {k: v for k, v in (("timeout", args.timeout), ("cooldown", args.cooldown)) if v is not None}
    if management:
        doc["management"] = {**doc.get("management", {}), **management}
    if args.info:
        doc["contextSourceInfo"] = [_pair(item) for item in args.info]
    for member in ("endpoint", "information"):
        if member not in doc:
            raise ValueError(
                f"a registration needs {member}: give --{'endpoint' if member == 'endpoint' else 'type'}"
                " or a FILE that has it"
            )
    return doc


def _information(args: argparse.Namespace) -> dict[str, Any]:
    entities: list[dict[str, Any]] = []
    if args.entity_id:
        if len(args.type) != 1:
            raise ValueError("--entity-id needs exactly one --type (the entities' type)")
        entities = [{"id": eid, "type": args.type[0]} for eid in args.entity_id]
    elif args.type:
        entities = [{"type": t} for t in args.type]
        if args.id_pattern:
            entities = [{**e, "idPattern": args.id_pattern} for e in entities]
    elif args.id_pattern:
        raise ValueError("--id-pattern needs --type")
    info: dict[str, Any] = {"entities": entities} if entities else {}
    if args.property:
        info["propertyNames"] = args.property
    if args.relationship:
        info["relationshipNames"] = args.relationship
    return info


def _pair(item: str) -> dict[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--info {item!r}: expected KEY=VALUE")
    return {"key": key, "value": value}


def run(args: argparse.Namespace) -> int:
    try:
        doc = build(args)
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        print(f"agora register: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(doc, indent=2))
        return 0
    if not args.broker:
        print("agora register: --broker is required (or --dry-run)", file=sys.stderr)
        return 2
    headers = {"Content-Type": "application/json"}
    if args.tenant:
        headers["NGSILD-Tenant"] = args.tenant
    if args.context:
        headers["Link"] = f'<{args.context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    url = args.broker.rstrip("/") + "/ngsi-ld/v1/csourceRegistrations"
    try:
        response = httpx.post(url, content=json.dumps(doc), headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"agora register: cannot reach {args.broker}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 201:
        print(f"agora register: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    print(unquote(response.headers.get("Location", "").rsplit("/", 1)[-1]))
    return 0
