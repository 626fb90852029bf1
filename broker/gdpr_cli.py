"""`agora gdpr export|erase|records|retain|pseudonymise|reidentify|key`: the GDPR duties (issue 19, records
0320-0323), run straight on the broker's store (`--store`, else AGORA_STORE), as `agora policy` does: a data
protection officer answers a subject without a running broker, and an erasure does not wait for one."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from broker.core.contexts import Contexts
from broker.core.errors import BadRequestData
from broker.core.policies import FLUSH_SECONDS
from broker.gdpr import export as gexport
from broker.gdpr import records as grecords
from broker.gdpr import retention as gretention
from broker.gdpr.erase import Notices, erase
from broker.gdpr.pseudonym import Pseudonymiser, copy_to_analytics, new_key
from broker.guards import policy_for
from broker.settings import Settings
from broker.store import open_store
from broker.store.base import Store

_STORE_HELP = "store URL (default AGORA_STORE, else sqlite:///agora.db)"
_SUBJECT_HELP = "the data subject: an entity id (urn:ngsi-ld:Person:...) or an identifier the data holds"
_EPILOG = """A subject's data (record 0321): the entity whose id is SUBJECT, the entities whose identifier
attribute (dataSubject, ticketHolder, licensePlate ...) names it, and the entities that link to those through a
personal Relationship, in every tenant, with their whole history, the subscriptions watching them by id and the
audit records naming them."""


def add_subcommand(sub: Any) -> None:
    gdpr = sub.add_parser(
        "gdpr",
        help="GDPR duties: subject access, erasure, records of processing, retention, pseudonymisation",
        description="Answer data subjects and keep the GDPR records, straight on the broker's store.",
        epilog=_EPILOG,
    )
    gdpr.add_argument("--store", help=_STORE_HELP)
    actions = gdpr.add_subparsers(dest="gdpr_command", metavar="ACTION")
    exp = actions.add_parser("export", help="everything held about a subject (art. 15, 20)", epilog=_EPILOG)
    exp.add_argument("--subject", required=True, help=_SUBJECT_HELP)
    exp.add_argument("--format", choices=("jsonld", "csv"), default="jsonld",
                     help="a JSON-LD document (default) or a zip of CSV files")  # fmt: skip
    exp.add_argument("--output", "-o", help="write there (default: standard output; csv needs a file)")
    era = actions.add_parser("erase", help="erase a subject's data everywhere (art. 17)", epilog=_EPILOG)
    era.add_argument("--subject", required=True, help=_SUBJECT_HELP)
    era.add_argument("--by", default="agora gdpr erase", help="who asks, as the audit record names them")
    era.add_argument("--no-notify", action="store_true", help="send no deletion notices to subscribers")
    rec = actions.add_parser("records", help="records of processing activities (art. 30), from marks and rules")
    rec.add_argument("--format", choices=("markdown", "json"), default="markdown", help="default markdown")
    actions.add_parser("retain", help="run the retention rules (AGORA_GDPR_RETENTION) once, in every tenant")
    pse = actions.add_parser("pseudonymise", help="copy a tenant into an analytics tenant, identifiers pseudonymised")
    pse.add_argument("--from", dest="source", default="", help="the tenant copied ('' is the default tenant)")
    pse.add_argument("--to", dest="target", required=True, help="the analytics tenant written")
    rei = actions.add_parser("reidentify", help="the identifier behind a pseudonym (the key holder only)")
    rei.add_argument("pseudonym", metavar="PSEUDONYM")
    for parser in (pse, rei):
        parser.add_argument("--key-file", help="the pseudonym key file (default AGORA_GDPR_PSEUDONYM_KEY)")
    actions.add_parser("key", help="print a new pseudonym key (keep it where only the controller reads it)")


def run(args: argparse.Namespace) -> int:
    if args.gdpr_command is None:
        print(
            "agora gdpr: say export, erase, records, retain, pseudonymise, reidentify or key (--help)", file=sys.stderr
        )
        return 2
    if args.gdpr_command == "key":
        print(new_key())
        return 0
    settings = Settings.from_env(store=args.store)
    try:
        if args.gdpr_command == "reidentify":
            print(_pseudonymiser(args, settings).reidentify(args.pseudonym))
            return 0
        return asyncio.run(_run(open_store(settings.store), settings, args))
    except (ValueError, OSError, BadRequestData) as exc:
        print(f"agora gdpr {args.gdpr_command}: {exc}", file=sys.stderr)
        return 2


def _pseudonymiser(args: argparse.Namespace, settings: Settings) -> Pseudonymiser:
    path = args.key_file or settings.gdpr_pseudonym_key
    if not path:
        raise ValueError("no pseudonym key: give --key-file or set AGORA_GDPR_PSEUDONYM_KEY (agora gdpr key)")
    return Pseudonymiser.from_file(path)


async def _run(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    await store.open()
    try:
        return await _ACTIONS[args.gdpr_command](store, settings, args)
    finally:
        await store.close()


async def _export(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    found = await gexport.collect(store, args.subject)
    if args.format == "csv":
        if not args.output:
            raise ValueError("--format csv writes a zip: give --output FILE")
        Path(args.output).write_bytes(gexport.csv_bundle(found))
    else:
        text = json.dumps(gexport.jsonld(found), indent=2, ensure_ascii=False)
        if args.output:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
    print(f"{len(found.ids)} entities of {args.subject} in {len(found.tenants)} tenant(s)", file=sys.stderr)
    return 0


async def _erase(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    notices = None
    if not args.no_notify:
        outbound = policy_for(settings.open_loopback, settings.outbound_allow)
        contexts = Contexts(store, settings.context_timeout, outbound=outbound)
        notices = Notices(store, contexts.resolver, outbound)
    try:
        settle = 2 * FLUSH_SECONDS if settings.audit_enabled else 0.0  # running brokers' buffered records
        report = await erase(store, args.subject, args.by, notices, audit_settle=settle)
    finally:
        if notices is not None:
            await notices.aclose()
    print(f"erased {args.subject}: {report.summary()}", file=sys.stderr)
    return 0


async def _records(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    doc = await grecords.records(store, gretention.parse_rules(settings.gdpr_retention), settings.gdpr_controller)
    print(json.dumps(doc, indent=2) if args.format == "json" else grecords.markdown(doc))
    return 0


async def _retain(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    rules = gretention.parse_rules(settings.gdpr_retention)
    if not rules:
        raise ValueError("no retention rule: set AGORA_GDPR_RETENTION (e.g. SmartMeteringObservation=P2Y)")
    entities, instances = await gretention.run_once(store, rules)
    print(f"retention: {entities} entities and {instances} temporal instances expired", file=sys.stderr)
    return 0


async def _pseudonymise(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    if args.target == args.source:
        raise ValueError("--to must be another tenant than --from")
    entities, instances = await copy_to_analytics(store, args.source, args.target, _pseudonymiser(args, settings))
    print(f"copied {entities} entities and {instances} temporal instances into {args.target!r}", file=sys.stderr)
    return 0


_ACTIONS = {
    "export": _export,
    "erase": _erase,
    "records": _records,
    "retain": _retain,
    "pseudonymise": _pseudonymise,
}
