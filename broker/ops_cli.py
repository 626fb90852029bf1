"""The operations commands of `agora`: migrate (store schema upgrades), dump and restore (backups, broker.dump)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from adapters.progress import Progress
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
    dump = sub.add_parser(
        "dump",
        help="back up everything a store holds to an archive",
        description="Write everything the store holds (entities, temporal history, subscriptions, context source "
        "registrations and subscriptions, @context documents, snapshots, access policies, API keys, open datasets) to "
        "ARCHIVE, a "
        "gzip file of JSON lines with a versioned header, read and written as a stream (record 0245). Any backend; "
        "`agora restore` writes it into any other. Run it against a stopped broker, or accept that writes made "
        "meanwhile may be in it or not.",
    )
    dump.add_argument("archive", metavar="ARCHIVE", help="the file to write (e.g. agora-2026-12-07.jsonl.gz)")
    dump.add_argument("--store", help="store URL (default: AGORA_STORE, else sqlite:///agora.db)")
    res = sub.add_parser(
        "restore",
        help="restore an archive of `agora dump` into a store",
        description="Write the records of ARCHIVE (made by `agora dump` from any backend) into the store, which "
        "must be empty (no entity, temporal entity, subscription or @context) unless --force. Exit 1 when the "
        "archive cannot be read or the store is not empty.",
    )
    res.add_argument("archive", metavar="ARCHIVE", help="the archive to read")
    res.add_argument("--store", help="store URL (default: AGORA_STORE, else sqlite:///agora.db)")
    res.add_argument("--force", action="store_true", help="restore into a store that is not empty (records merge)")


async def _migrate(store: Store) -> list[str]:
    await store.open()  # open() migrates: the same code path as `agora serve`
    try:
        return list(store.migrations_applied)
    finally:
        await store.close()


async def _prepare(store: Store) -> None:
    """Open (migrate) the store and draw its installation number (record 0199) before any worker starts, so
    that N workers on a fresh store never draw two."""
    await store.open()
    try:
        await store.installation()
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
    workers do not race to), draw its installation number, close it; the reason it cannot serve, or None."""
    if url.startswith("memory:"):
        return None
    try:
        asyncio.run(_prepare(open_store(url)))
    except SchemaTooNew as exc:
        return str(exc)
    except Exception:  # unreachable now, say: the workers' own start-up reports it as it always did
        return None
    return None


ArchiveWork = Callable[[Store, argparse.Namespace, Progress], Awaitable[dict[str, int]]]


async def _dump(store: Store, args: argparse.Namespace, progress: Progress) -> dict[str, int]:
    from broker.dump import dump

    with open(args.archive, "wb") as out:
        return await dump(store, out, progress.update)


async def _restore(store: Store, args: argparse.Namespace, progress: Progress) -> dict[str, int]:
    from broker.dump import DumpError, is_empty, read_archive, restore

    _, lines = read_archive(args.archive)  # refused before the store is touched
    if not args.force and not await is_empty(store):
        raise DumpError("the store is not empty: restore into an empty one, or give --force")
    return await restore(store, lines, progress.update)


async def _with_store(url: str, args: argparse.Namespace, work: ArchiveWork) -> dict[str, int]:
    store = open_store(url)
    await store.open()
    progress = Progress(unit="records")
    try:
        counts = await work(store, args, progress)
    except BaseException:
        progress.close()  # a failed run stops the bar (its thread, the hidden cursor) before the error is shown
        raise
    finally:
        await store.close()
    progress.done(sum(counts.values()))
    return counts


def _archive_command(args: argparse.Namespace, work: ArchiveWork, verb: str) -> int:
    url = Settings.from_env(store=args.store).store
    try:
        counts = asyncio.run(_with_store(url, args, work))
    except (SchemaTooNew, ValueError, OSError) as exc:
        print(f"agora {args.command}: {exc}", file=sys.stderr)
        return 1
    _report(verb, counts)
    return 0


def dump_command(args: argparse.Namespace) -> int:
    return _archive_command(args, _dump, "dumped")


def restore_command(args: argparse.Namespace) -> int:
    return _archive_command(args, _restore, "restored")


def _report(verb: str, counts: dict[str, int]) -> None:
    print(f"{verb}: {sum(counts.values())} records", file=sys.stderr)
    for kind, count in sorted(counts.items()):
        print(f"  {kind:<22} {count}", file=sys.stderr)
