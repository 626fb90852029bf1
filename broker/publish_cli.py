"""`agora publish add|list|remove|dump`: the open datasets (issue 19, records 0340-0343), written straight in the
broker's store (`--store`, else AGORA_STORE), as `agora policy` does. A running broker regenerates a dataset
added here at its next interval (AGORA_OPENDATA_INTERVAL); `dump` writes one distribution now."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import IO, Any

from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import NgsiLdError
from broker.opendata.dumps import FORMATS, Survey, project_termmap, stream, survey
from broker.opendata.service import OpenData
from broker.opendata.spec import DEFAULT_LICENCE, FREQUENCIES
from broker.settings import Settings
from broker.store import open_store
from broker.store.base import Store

_EXAMPLE = """Example:
  agora publish add stops --type GtfsStop --network sample --title "Bus stops" \\
      --description "Every stop of the sample feed" --publisher "City of Lyon" --frequency WEEKLY
  agora publish dump stops --format geojson --out stops.geojson
The type is a term of the project @context (ontologies/agora-context.jsonld) or a full IRI. Attributes the
ontology marks as personal data (ontologies/personal_data.csv) never appear in a distribution; a type it marks as
personal cannot be published. Anyone may read /catalog and the distributions, without credentials."""


def add_subcommand(sub: Any) -> None:
    publish = sub.add_parser(
        "publish",
        help="publish, list, withdraw and dump open datasets (the DCAT-AP catalogue at /catalog)",
        description="Manage the open datasets kept in the broker's store and served at /catalog.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("--store", help="store URL (default AGORA_STORE, else sqlite:///agora.db)")
    actions = publish.add_subparsers(dest="publish_command", metavar="ACTION")
    add = actions.add_parser("add", help="publish a dataset, or republish the one of the same id")
    add.add_argument("dataset_id", metavar="ID", help="1-64 lower-case letters, digits, '.', '_' or '-'")
    add.add_argument("--type", required=True, help="the entity type: a project @context term or an IRI")
    add.add_argument("--network", help="only the entities of this network (ids urn:ngsi-ld:<Type>:<network>:...)")
    add.add_argument("--title", required=True, help="the dataset's title")
    add.add_argument("--description", required=True, help="what the dataset holds")
    add.add_argument("--licence", help=f"the licence document's IRI (default {DEFAULT_LICENCE})")
    add.add_argument("--publisher", help="who publishes it (default AGORA_OPENDATA_PUBLISHER)")
    add.add_argument("--frequency", choices=sorted(FREQUENCIES), help="how often it changes (default DAILY)")
    add.add_argument("--keyword", action="append", default=[], help="a keyword (repeatable)")
    add.add_argument("--tenant", help="the tenant whose entities it holds (default: the default tenant)")
    actions.add_parser("list", help="print every published dataset, one JSON document a line")
    remove = actions.add_parser("remove", help="withdraw a dataset by its id")
    remove.add_argument("dataset_id", metavar="ID")
    dump = actions.add_parser("dump", help="write one distribution of a dataset, streamed from the store")
    dump.add_argument("dataset_id", metavar="ID")
    dump.add_argument("--format", required=True, choices=sorted(FORMATS), help="the distribution's format")
    dump.add_argument("--out", help="the file to write (default: standard output)")
    dump.add_argument("--base-url", default="http://127.0.0.1:1026", help="the broker's public URL (jsonld @context)")


def run(args: argparse.Namespace) -> int:
    if args.publish_command is None:
        print("agora publish: say add, list, remove or dump (agora publish --help)", file=sys.stderr)
        return 2
    settings = Settings.from_env(store=args.store)
    try:
        return asyncio.run(_run(open_store(settings.store), settings, args))
    except (ValueError, OSError) as exc:
        print(f"agora publish: {exc}", file=sys.stderr)
        return 2
    except NgsiLdError as exc:
        print(f"agora publish: {exc.detail}", file=sys.stderr)
        return 1 if exc.status == 404 else 2


async def _run(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    await store.open()
    try:
        service = OpenData(store, Access(store), settings)  # the CLI acts as the administrator (Caller())
        if args.publish_command == "list":
            for spec, found in await service.published():
                print(json.dumps({**spec.to_doc(), **({"state": found.to_state()} if found else {})}))
        elif args.publish_command == "remove":
            await service.withdraw(Caller(), args.dataset_id)
            print(f"withdrew dataset {args.dataset_id}", file=sys.stderr)
        elif args.publish_command == "add":
            spec, new = await service.publish(Caller(), _document(args), project_termmap().expand_term)
            print(f"{'published' if new else 'republished'} dataset {spec.id}", file=sys.stderr)
        else:
            await _dump(store, service, args)
        return 0
    finally:
        await store.close()


def _document(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": args.dataset_id, "type": args.type, "title": args.title}
    doc["description"] = args.description
    for name in ("network", "licence", "publisher", "frequency", "tenant"):
        if getattr(args, name) is not None:
            doc[name] = getattr(args, name)
    if args.keyword:
        doc["keywords"] = args.keyword
    return doc


async def _dump(store: Store, service: OpenData, args: argparse.Namespace) -> None:
    spec, found = await service.dataset(Caller(), args.dataset_id)
    found = found or await survey(store, spec)
    out: IO[bytes] = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115 - closed below
    try:
        await _write(stream(store, spec, args.format, found, args.base_url.rstrip("/")), out)
    finally:
        if args.out:
            out.close()
    _summary(found, args)


async def _write(chunks: Any, out: IO[bytes]) -> None:
    async for chunk in chunks:
        out.write(chunk)


def _summary(found: Survey, args: argparse.Namespace) -> None:
    print(f"{found.count} entities of dataset {args.dataset_id} as {args.format}", file=sys.stderr)
