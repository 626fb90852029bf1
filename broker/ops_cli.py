"""The operations commands of `agora`: migrate (store schema upgrades), dump and restore (backups, broker.dump)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from broker.settings import Settings
from broker.store import open_store
from broker.store.base import SchemaTooNew, Store


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mig = sub.add_parser(
        "migrate",
        help="bring a store's schema up to this Agora's version",
        description="Run the forward migrations of the store's schema (record 0241), as `agora serve` does at "
        "start-up, and say what was done. A store written by a newer Agora is refused (exit 1) and left alone.",
    )
    mig.add_argument("--store", help="store URL (default: AGORA_STORE, else sqlite:///agora.db)")


async def _migrate(store: Store) -> list[str]:
    await store.open()  # open() migrates: the same code path as `agora serve`
    try:
        return list(store.migrations_applied)
    finally:
        await store.close()


def migrate(args: argparse.Namespace) -> int:
    url = Settings.from_env(store=args.store).store
    try:
        store = open_store(url)
        applied = asyncio.run(_migrate(store))
    except SchemaTooNew as exc:
        print(f"agora migrate: refused: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"agora migrate: {exc}", file=sys.stderr)
        return 1
    for line in applied:
        print(f"migrated: {line}")
    if not applied:
        print(f"the store is at schema version {store.SCHEMA_VERSION}: nothing to do")
    return 0


def check_store(url: str) -> str | None:
    """What `agora serve` runs before it starts any worker: open the store once (which migrates it, so that N
    workers do not race to), close it; the reason it cannot serve, or None."""
    if url.startswith("memory:"):
        return None
    try:
        asyncio.run(_migrate(open_store(url)))
    except SchemaTooNew as exc:
        return str(exc)
    except Exception:  # unreachable now, say: the workers' own start-up reports it as it always did
        return None
    return None
