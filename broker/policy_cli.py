"""`agora policy list|add|remove|load` and `agora audit`: the access policies and the audit log (records 0220,
0224), read and written straight in the broker's store (`--store`, else AGORA_STORE), as `agora keys` does: the
first administrator's rules cannot wait for an API that needs them. Every broker process sees a change within
a second (broker.core.access.REFRESH_SECONDS)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from broker.core.access import Rule, parse_rule, stored_rule
from broker.core.errors import BadRequestData
from broker.core.policies import audit_time, read_policy_file
from broker.ld.termmap import TermMap, core_termmap
from broker.settings import Settings
from broker.store import open_store
from broker.store.base import AuditQuery, Store

_EXAMPLE = """A rule (JSON):
  {"id": "water-operator-reads", "roles": ["water-operator"], "actions": ["read", "temporal"],
   "tenants": ["water"], "types": ["WaterPipe"], "attrs": ["pressure", "flow"]}
who: subjects, clients, roles, groups, issuer; what: actions (read, write, subscribe, temporal, purge, contexts,
registrations, admin); on: tenants, types, idPatterns, attrs, scopes; effect: allow (default) or deny. A listed
member must hold; deny wins; nothing is allowed that no rule allows; the admin role may do everything. Types and
attributes are terms of the core @context or full IRIs (a policy file may give its own @context)."""


def add_subcommands(sub: Any) -> None:
    policy = sub.add_parser(
        "policy",
        help="list, add, remove and load access policy rules",
        description="Manage the access policy rules kept in the broker's store.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    policy.add_argument("--store", help="store URL (default AGORA_STORE, else sqlite:///agora.db)")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION")
    actions.add_parser("list", help="print every rule, one JSON document a line")
    add = actions.add_parser("add", help="add a rule, or replace the rule of the same id")
    add.add_argument("rule", metavar="JSON", help="the rule, a JSON object")
    remove = actions.add_parser("remove", help="remove a rule by its id")
    remove.add_argument("rule_id", metavar="RULE_ID")
    load = actions.add_parser(
        "load", help="add (or replace) every rule of a file", description="FILE is YAML, JSON or TOML with `rules`."
    )
    load.add_argument("file", metavar="FILE")
    audit = sub.add_parser(
        "audit",
        help="read the audit log, newest first",
        description="Print audit records (one JSON document a line), newest first: who, when, which operation, "
        "tenant and entities, the status and whether it was allowed or refused; never attribute values.",
    )
    audit.add_argument("--store", help="store URL (default AGORA_STORE, else sqlite:///agora.db)")
    for name in ("since", "until", "subject", "tenant", "operation", "outcome", "entity-id"):
        audit.add_argument(f"--{name}", help=_AUDIT_HELP[name])
    audit.add_argument("--limit", type=int, default=100, help="most records to print (default 100)")
    audit.add_argument("--offset", type=int, default=0, help="records to skip first (default 0)")


_AUDIT_HELP = {
    "since": "records at or after this UTC time (e.g. 2026-12-07T00:00:00Z)",
    "until": "records before this UTC time",
    "subject": "the caller's subject",
    "tenant": "the tenant ('' is the default tenant)",
    "operation": "a part of the operation, e.g. 'DELETE' or '/entities'",
    "outcome": "allowed or refused",
    "entity-id": "an entity id the operation named",
}


def check_policy_file(path: str, *, offline: bool = False) -> list[Rule]:
    """The rules of a policy file, each checked (ValueError naming the file otherwise). Without `offline`, a
    file whose @context is a URL is only checked (its terms kept as written): `agora serve` expands them with
    its resolver when it loads the file."""
    docs, context = read_policy_file(path)
    expand: Callable[[str], str]
    if context is not None and not isinstance(context, dict) and not offline:
        expand = str
    else:
        expand = _file_termmap(context).expand_term
    try:
        return [parse_rule(doc, expand) for doc in docs]
    except Exception as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _file_termmap(context: Any) -> TermMap:
    """The term map of a file's inline @context (or the core one); a remote @context needs the broker's resolver,
    which `agora serve --policies` has."""
    if context is None:
        return core_termmap()
    if not isinstance(context, dict):
        raise ValueError("a policy file checked offline takes an inline @context object, not a URL")
    return TermMap.build(context, {})


def run(args: argparse.Namespace) -> int:
    if args.command == "policy" and args.policy_command is None:
        print("agora policy: say list, add, remove or load (agora policy --help)", file=sys.stderr)
        return 2
    url = Settings.from_env(store=args.store).store
    try:
        return asyncio.run(_run(open_store(url), args))
    except (ValueError, OSError, BadRequestData) as exc:
        print(f"agora {args.command}: {exc}", file=sys.stderr)
        return 2


async def _run(store: Store, args: argparse.Namespace) -> int:
    await store.open()
    try:
        if args.command == "audit":
            return await _audit(store, args)
        return await _policy(store, args)
    finally:
        await store.close()


async def _policy(store: Store, args: argparse.Namespace) -> int:
    if args.policy_command == "list":
        for doc in await store.list_policies():
            print(json.dumps(stored_rule(doc).to_doc()))
        return 0
    if args.policy_command == "remove":
        if not await store.delete_policy(args.rule_id):
            print(f"agora policy: no rule {args.rule_id}", file=sys.stderr)
            return 1
        print(f"removed rule {args.rule_id}", file=sys.stderr)
        return 0
    rules = check_policy_file(args.file, offline=True) if args.policy_command == "load" else [_one(args.rule)]
    for rule in rules:
        new = await store.put_policy(rule.to_doc())
        print(f"{'added' if new else 'replaced'} rule {rule.id}", file=sys.stderr)
    return 0


def _one(text: str) -> Rule:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the rule is not JSON: {exc}") from exc
    try:
        return parse_rule(doc, core_termmap().expand_term)
    except Exception as exc:
        raise ValueError(str(exc)) from exc


async def _audit(store: Store, args: argparse.Namespace) -> int:
    query = AuditQuery(
        since=audit_time(args.since, "--since"),
        until=audit_time(args.until, "--until"),
        subject=args.subject,
        tenant=args.tenant,
        operation=args.operation,
        outcome=args.outcome,
        entity_id=args.entity_id,
        limit=args.limit,
        offset=args.offset,
    )
    for record in await store.read_audit(query):
        print(json.dumps(record.to_doc()))
    return 0
