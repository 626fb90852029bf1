"""`agora keys create|list|revoke`: the API keys of machine clients (decision record 0203), written straight to the
broker's store (`--store`, else AGORA_STORE), since the first key cannot be made through an API that needs one.
`create` prints the key once, on standard output; the store keeps only the hash of its secret."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from broker.auth.apikeys import new_key
from broker.core.model import now_iso
from broker.settings import Settings
from broker.store import open_store
from broker.store.base import ApiKeyRecord, Store


def add_subcommand(sub: Any) -> None:
    keys = sub.add_parser(
        "keys",
        help="create, list and revoke API keys of machine clients",
        description="Manage the API keys that machine clients (adapters, gateways) authenticate with, sent as "
        "`X-API-Key: KEY` or `Authorization: Bearer KEY`. Keys are written to the broker's store; a key is "
        "shown once, when it is created.",
    )
    keys.add_argument("--store", help="store URL (default AGORA_STORE, else sqlite:///agora.db)")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="make a key and print it once",
        description="Make a key; the key is printed on standard output (keep it: only its hash is stored), its id "
        "on standard error.",
    )
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'gtfs importer' (shown in lists)")
    create.add_argument("--role", action="append", default=[], help="a role the key carries (repeatable)")
    create.add_argument(
        "--tenant",
        action="append",
        help="a tenant the key may act in (repeatable; '' is the default tenant); without it, every tenant",
    )
    actions.add_parser("list", help="list the keys", description="List every key: id, name, roles, tenants, state.")
    revoke = actions.add_parser(
        "revoke",
        help="revoke a key",
        description="Revoke a key by its id: requests with it are refused (401) within seconds on every broker "
        "process. The record stays, marked revoked.",
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id (the 12 hex digits after agora_)")


def run(args: argparse.Namespace) -> int:
    if args.keys_command is None:
        print("agora keys: say create, list or revoke (agora keys --help)", file=sys.stderr)
        return 2
    url = Settings.from_env(store=args.store).store
    if url.startswith("memory:"):
        print(
            "agora keys: memory:// keeps nothing past this command; name the broker's store (--store)", file=sys.stderr
        )
        return 2
    try:
        return asyncio.run(_run(open_store(url), args))
    except ValueError as exc:
        print(f"agora keys: {exc}", file=sys.stderr)
        return 2


async def _run(store: Store, args: argparse.Namespace) -> int:
    await store.open()
    try:
        if args.keys_command == "create":
            record, key = new_key(args.name, tuple(args.role), None if args.tenant is None else tuple(args.tenant))
            if not await store.create_api_key(record):
                print("agora keys: a key with the same id exists; run the command again", file=sys.stderr)
                return 1
            print(f"created key {record.id} ({record.name}); it is shown once:", file=sys.stderr)
            print(key)
            return 0
        if args.keys_command == "list":
            for record in await store.list_api_keys():
                print(_line(record))
            return 0
        if not await store.revoke_api_key(args.key_id, now_iso()):
            print(f"agora keys: no key {args.key_id} that is not revoked already", file=sys.stderr)
            return 1
        print(f"revoked key {args.key_id}", file=sys.stderr)
        return 0
    finally:
        await store.close()


def _line(record: ApiKeyRecord) -> str:
    tenants = "every tenant" if record.tenants is None else ",".join(t or "(default)" for t in record.tenants)
    state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
    roles = ",".join(record.roles) or "-"
    return f"{record.id}  {record.name}  roles={roles}  tenants={tenants}  created {record.created_at}  {state}"
