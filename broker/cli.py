"""The `agora` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from broker.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agora", description="Agora, an NGSI-LD context broker for a city.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve", help="run the broker", description="Run the NGSI-LD broker (HTTP API at /ngsi-ld/v1)."
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 1026)")
    serve.add_argument(
        "--store",
        help="store URL: sqlite:///path.db (default sqlite:///agora.db), memory://, redis://host:6379/0, "
        "rediss://..., redis+cluster://host:7000,host:7001, rediss+cluster://... (Redis URLs take ?prefix=, "
        "?shards=, ?timeout=; see the README)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="number of worker processes (default 1); on Linux each listens on the port with SO_REUSEPORT, so the "
        "kernel spreads client connections over them, and a worker that dies is replaced",
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info)")
    serve.add_argument(
        "--config",
        metavar="FILE",
        help='a TOML file of settings, any field of the table in the README as a key (store = "redis://..."); '
        "the AGORA_* environment overrides it and flags override both (default: AGORA_CONFIG, else none)",
    )
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text lines (default), or one JSON object per line with an access log line per request and its request id",
    )
    serve.add_argument(
        "--outbound-allow",
        metavar="NETWORKS",
        help="loopback and private networks the broker may connect to (remote @contexts, notifications, context "
        "sources): loopback, private, CIDR networks, comma-separated; link-local and metadata addresses never",
    )
    serve.add_argument(
        "--auth",
        choices=["open", "required"],
        help="open: no authentication, every request is the administrator; required: a bearer token or an API key "
        "on every request (default: required when --issuers is given, else open)",
    )
    serve.add_argument("--issuers", metavar="FILE", help="JSON file of the OpenID Connect issuers whose tokens count")
    serve.add_argument(
        "--policies",
        metavar="FILE",
        help="access policy rules (YAML, JSON or TOML) added to the store at start-up (see agora policy --help)",
    )
    serve.add_argument(
        "--audit",
        choices=["on", "off"],
        help="the audit log of every request (default: on when authentication is, else off)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="listen on a non-loopback address in the open mode (no authentication), on purpose",
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="certificate (chain) to serve HTTPS with (with --tls-key)")
    serve.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    sub.add_parser(
        "adapters", help="list the adapters", description="List the adapters registered in the agora.adapters group."
    )
    imp = sub.add_parser(
        "import",
        help="import a native source into a broker",
        description="Translate SOURCE with ADAPTER and upsert the entities into the NGSI-LD broker at --broker.",
    )
    imp.add_argument("adapter", metavar="ADAPTER", help="adapter name (see `agora adapters`)")
    imp.add_argument("source", metavar="SOURCE", help="the native source (for gtfs: a feed zip)")
    imp.add_argument("--broker", help="broker base URL, e.g. http://127.0.0.1:1026 (required unless --dry-run)")
    imp.add_argument("--tenant", help="NGSI-LD tenant (NGSILD-Tenant header)")
    imp.add_argument("--context", help="@context URL to send (default: host the project context on the broker)")
    imp.add_argument("--network", help="network name in the entity ids (default: the source's own, e.g. agency)")
    imp.add_argument("--chunk-size", type=int, default=500, help="entities per batch upsert (default 500)")
    imp.add_argument("--dry-run", action="store_true", help="print the entities as JSON lines, send nothing")
    imp.add_argument(
        "--validate",
        action="store_true",
        help="check each entity against the JSON Schema of its type; report and skip the failing ones",
    )
    imp.add_argument(
        "--changed-only",
        action="store_true",
        help="read each chunk's stored versions first and write only the entities that differ",
    )
    imp.add_argument(
        "--follow",
        type=float,
        metavar="SECONDS",
        help="poll SOURCE (file or URL) every SECONDS and upsert only what changed, until interrupted",
    )
    imp.add_argument("--rounds", type=int, help="with --follow: stop after this many polls")
    imp.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="write the run's counts there in the Prometheus text format (for node_exporter's textfile collector)",
    )
    imp.add_argument(
        "--prune",
        action="store_true",
        help="delete the entities of this adapter's types and network that the source no longer has",
    )
    imp.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on a terminal, no progress lines elsewhere: only the summary at the end",
    )
    from adapters.live.cli import add_subcommand as add_ingest
    from adapters.live.source import add_subcommand as add_source
    from broker.gdpr_cli import add_subcommand as add_gdpr
    from broker.keys_cli import add_subcommand as add_keys
    from broker.ops_cli import add_subcommands as add_ops
    from broker.policy_cli import add_subcommands as add_policy
    from broker.publish_cli import add_subcommand as add_publish
    from broker.register_cli import add_subcommand as add_register
    from conformance.cli import add_subcommand

    add_subcommand(sub)
    add_register(sub)
    add_keys(sub)
    add_policy(sub)
    add_publish(sub)
    add_ops(sub)
    add_gdpr(sub)
    add_ingest(sub)
    add_source(sub)
    val = sub.add_parser(
        "validate",
        help="check entities against the project's JSON Schemas and @context",
        description="Check NGSI-LD entities (normalized form) from FILE (JSON array, one entity, or JSON lines such "
        "as `agora import --dry-run` output) or from a broker: JSON Schema of the type, terms of the project "
        "@context, attribute structure, UN/CEFACT unit codes, WGS84 GeoJSON locations. Exit 0 when all conform, "
        "3 when some do not, 1 when the input cannot be read.",
    )
    val.add_argument("file", metavar="FILE", nargs="?", help="a file of entities")
    val.add_argument("--broker", help="broker base URL: check the entities stored there (needs --type)")
    val.add_argument("--type", help="entity type to check (required with --broker)")
    val.add_argument("--tenant", help="NGSI-LD tenant (NGSILD-Tenant header)")
    val.add_argument("--context", help="@context URL to query with (default: the broker's copy of the project's)")
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from broker.config import ConfigError, load_settings
    from broker.http.app import configure_logging  # here: the other commands do without the app's imports

    try:
        settings = load_settings(
            args.config or os.environ.get("AGORA_CONFIG"),
            host=args.host,
            port=args.port,
            store=args.store,
            workers=args.workers,
            log_level=args.log_level,
            log_format=args.log_format,
            outbound_allow=args.outbound_allow,
            auth=args.auth,
            issuers=args.issuers,
            policies=args.policies,
            audit=args.audit,
            insecure=args.insecure,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
    except ConfigError as exc:
        print(f"agora serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("agora")
    if settings.workers < 1:
        print(f"agora serve: --workers must be 1 or more, not {settings.workers}", file=sys.stderr)
        return 2
    if (refusal := security_refusal(settings)) is not None:
        print(f"agora serve: {refusal}", file=sys.stderr)
        return 2
    if not settings.auth_required and not settings.open_loopback:
        log.warning("--insecure: anyone who reaches %s can read and change everything", settings.host)
    from broker.ops_cli import check_store

    if (refused := check_store(settings.store)) is not None:
        print(f"agora serve: {refused}", file=sys.stderr)
        return 1
    log.info(
        "Agora NGSI-LD broker listening on %s://%s:%d/ngsi-ld/v1 with store %s (%d worker(s))",
        "https" if settings.tls_cert else "http",
        settings.host,
        settings.port,
        settings.store,
        settings.workers,
    )
    # The workers are separate processes: they read their settings from the environment.
    os.environ.update(settings.environment())
    if settings.workers > 1:
        from broker.observe.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

        # Before any worker imports prometheus_client: each writes its metrics to files there (record 0243).
        os.environ[MULTIPROC_ENV] = prepare_multiprocess_dir(os.environ.get(MULTIPROC_ENV))
        from broker import workers

        if settings.store.startswith("memory:"):
            log.warning("memory:// is per process: the %d workers will not share their entities", settings.workers)
        if (why_not := workers.reuseport_unavailable()) is None:
            try:
                return workers.supervise(settings.host, settings.port, settings.log_level, settings.workers)
            except workers.CannotListen as exc:
                log.error("%s", exc)
                return 1
        # uvicorn's workers share one socket: a burst of connections may all land on one worker (record 0046).
        log.warning("%s: the workers share one listening socket instead", why_not)
    uvicorn.run(
        "broker.http.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
        server_header=False,  # no "Server: uvicorn": the software and its version are nobody's business (0206)
    )
    return 0


def security_refusal(settings: Settings) -> str | None:
    """Why `agora serve` will not start with these settings (one line), or None."""
    from broker.auth.oidc import load_issuers
    from broker.gdpr.retention import parse_rules
    from broker.guards import OutboundPolicy
    from broker.policy_cli import check_policy_file

    if not settings.auth_required and not settings.open_loopback and not settings.insecure:
        return (
            f"refusing to serve {settings.host} without authentication: configure --issuers (or --auth required "
            "for API keys), or give --insecure to run open on purpose"
        )
    try:
        OutboundPolicy.parse(settings.outbound_allow)  # checked in every mode, also where the open one wins
        if settings.issuers:
            load_issuers(settings.issuers)
        if settings.policies:
            check_policy_file(settings.policies)
        parse_rules(settings.gdpr_retention)
    except (ValueError, OSError) as exc:
        return str(exc)
    for path in (settings.tls_cert, settings.tls_key):
        if path and not os.path.isfile(path):
            return f"no TLS file {path}"
    return None


def list_adapters() -> int:
    from adapters.base import load_adapter, registered

    for name in registered():
        try:
            description = load_adapter(name).description
        except Exception as exc:  # a broken third-party adapter must not hide the others
            description = f"(cannot be loaded: {exc})"
        print(f"{name:<12} {description}")
    return 0


def import_source(args: argparse.Namespace) -> int:
    """Exit 0 when everything was written, 1 on a fatal error, 3 when rows or entities were rejected."""
    import json

    from adapters.base import SourceError, load_adapter
    from adapters.importer import ImportFailed, primed, prune_scope, run_import, validated
    from adapters.progress import Progress

    if not args.dry_run and not args.broker:
        print("agora import: --broker URL is required (or --dry-run)", file=sys.stderr)
        return 2
    if args.follow is not None:
        from adapters.importer import follow_command

        return follow_command(args)
    try:
        adapter = load_adapter(args.adapter)(network=args.network)
    except KeyError as exc:
        print(f"agora import: {exc.args[0]}", file=sys.stderr)
        return 2
    try:
        if args.dry_run:
            sent: dict[str, int] = {}
            invalid: list[tuple[str, str]] = []
            stream = adapter.entities(args.source)
            try:
                for entity in validated(stream, invalid) if args.validate else stream:
                    sys.stdout.write(json.dumps(entity, ensure_ascii=False) + "\n")
                    sent[entity["type"]] = sent.get(entity["type"], 0) + 1
            except BrokenPipeError:  # `agora import ... --dry-run | head`: the reader has seen enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            failed: list[tuple[str, str]] = []
            created = updated = pruned = unchanged = instances = 0
            prune_skipped = False
        else:
            started = time.monotonic()
            # started before the source is opened: an adapter that reads its whole source first (EPANET) shows it
            progress = Progress(meter=adapter.meter, rejected=lambda: len(adapter.rejections),
                                enabled=not args.no_progress)  # fmt: skip
            try:
                report = run_import(
                    primed(adapter.entities(args.source)),
                    args.broker,
                    tenant=args.tenant,
                    context=args.context,
                    chunk_size=args.chunk_size,
                    on_progress=progress.update,
                    validate=args.validate,
                    prune_scope=(lambda: prune_scope(adapter)) if args.prune else None,
                    compare=args.changed_only,
                )
            except BaseException:
                progress.close()  # the bar stops (its thread, the hidden cursor) before the error is printed
                raise
            progress.done(report.total, report.temporal)
            if args.metrics_file:
                from adapters.import_metrics import write_import_metrics

                seconds = time.monotonic() - started
                write_import_metrics(args.metrics_file, args.adapter, report, len(adapter.rejections), seconds)
            sent, failed, created, updated = dict(report.sent), report.failed, report.created, report.updated
            invalid, pruned, prune_skipped = report.invalid, report.pruned, report.prune_skipped
            unchanged, instances = report.unchanged, report.temporal
    except (SourceError, ImportFailed) as exc:
        print(f"agora import: {exc}", file=sys.stderr)
        return 1
    err = sys.stderr
    print(f"entities {'translated' if args.dry_run else 'sent'}: {sum(sent.values())}", file=err)
    for entity_type, count in sorted(sent.items()):
        print(f"  {entity_type:<24} {count}", file=err)
    if not args.dry_run:
        print(f"created: {created}, updated: {updated}, unchanged: {unchanged}, refused by the broker: {len(failed)}",
              file=err)  # fmt: skip
        if instances:
            print(f"temporal instances sent: {instances}", file=err)
    for eid, reason in failed:
        print(f"  refused {eid}: {reason}", file=err)
    if args.prune and not args.dry_run:
        skipped = " (skipped: not every entity was written)" if failed or invalid else " (skipped: partial source)"
        print(f"pruned: {pruned}" + (skipped if prune_skipped else ""), file=err)
    if args.validate:
        print(f"rejected by --validate: {len(invalid)}", file=err)
        for eid, reason in invalid:
            print(f"  invalid {eid}: {reason}", file=err)
    print(f"rejected rows: {len(adapter.rejections)}", file=err)
    for rejection in adapter.rejections:
        print(f"  {rejection}", file=err)
    for note in adapter.notes:
        print(f"note: {note}", file=err)
    return 3 if failed or invalid or adapter.rejections else 0


def adapter_help(parser: argparse.ArgumentParser, argv: Sequence[str]) -> bool:
    """`agora import ADAPTER --help`: the import options, then what this adapter's SOURCE is. False when argv is not
    such a request (or names no adapter), to let argparse answer."""
    words = [w for w in argv if not w.startswith("-")]
    if len(words) < 2 or words[0] != "import" or not ({"-h", "--help"} & set(argv)):
        return False
    from adapters.base import load_adapter

    try:
        adapter = load_adapter(words[1])
    except KeyError:
        return False
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands.choices["import"].print_help()
    print(f"\nadapter {words[1]}: {adapter.description}")
    print(f"SOURCE: {adapter.source_help or adapter.description}")
    if adapter.entity_types:
        print(f"entity types: {', '.join(adapter.entity_types)}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if adapter_help(parser, list(sys.argv[1:] if argv is None else argv)):
        return 0
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "adapters":
        return list_adapters()
    if args.command == "import":
        return import_source(args)
    if args.command == "validate":
        from adapters.validate import command

        return command(args)
    if args.command == "register":
        from broker.register_cli import run as run_register

        return run_register(args)
    if args.command == "source":
        from adapters.live.source import run as run_source

        return run_source(args)
    if args.command == "ingest":
        from adapters.live.cli import run as run_ingest

        return run_ingest(args)
    if args.command == "keys":
        from broker.keys_cli import run as run_keys

        return run_keys(args)
    if args.command in ("policy", "audit"):
        from broker.policy_cli import run as run_policy

        return run_policy(args)
    if args.command == "gdpr":
        from broker.gdpr_cli import run as run_gdpr

        return run_gdpr(args)
    if args.command == "publish":
        from broker.publish_cli import run as run_publish

        return run_publish(args)
    if args.command == "migrate":
        from broker.ops_cli import migrate

        return migrate(args)
    if args.command in ("dump", "restore"):
        from broker.ops_cli import dump_command, restore_command

        return dump_command(args) if args.command == "dump" else restore_command(args)
    if args.command == "conformance":
        from conformance.cli import run as run_conformance

        return run_conformance(args)
    parser.print_help()
    return 0 if args.command is None and argv == [] else 2


if __name__ == "__main__":
    sys.exit(main())
