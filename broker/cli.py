"""The `agora` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from broker.http.app import configure_logging
from broker.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agora", description="Agora, an NGSI-LD context broker for a city.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve", help="run the broker", description="Run the NGSI-LD broker (HTTP API at /ngsi-ld/v1)."
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 1026)")
    serve.add_argument("--store", help="store URL: sqlite:///path.db (default sqlite:///agora.db), memory://")
    serve.add_argument("--workers", type=int, help="number of worker processes (default 1)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info)")
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env(
        host=args.host, port=args.port, store=args.store, workers=args.workers, log_level=args.log_level
    )
    configure_logging(settings.log_level)
    log = logging.getLogger("agora")
    log.info(
        "Agora NGSI-LD broker listening on http://%s:%d/ngsi-ld/v1 with store %s (%d worker(s))",
        settings.host,
        settings.port,
        settings.store,
        settings.workers,
    )
    # The workers are separate processes: they read their settings from the environment.
    os.environ.update({"AGORA_STORE": settings.store, "AGORA_LOG_LEVEL": settings.log_level})
    uvicorn.run(
        "broker.http.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    parser.print_help()
    return 0 if args.command is None and argv == [] else 2


if __name__ == "__main__":
    sys.exit(main())
