"""`agora conformance`: run the kit against a broker URL, print one line per case, write the reports.

Exit status: 0 when no case failed (not implemented and known gaps do not fail a run), 1 when a case failed,
2 when the run could not start (bad option, broker unreachable, unknown report format).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import httpx

from conformance.features import FEATURES
from conformance.kit import API, Case
from conformance.known_gaps import PRODUCTS
from conformance.reports import WRITERS, RunInfo, summary_line, write_report
from conformance.runner import (
    FAILED,
    PASSED,
    Options,
    Result,
    coverage,
    execute,
    fixed_gaps,
    known_gaps_for,
    load_cases,
    open_run,
    select,
)

SYMBOLS = {PASSED: "ok  ", FAILED: "FAIL", "not implemented": "n/i ", "known gap": "gap "}


def add_subcommand(sub: Any) -> argparse.ArgumentParser:
    """Register `conformance` on the `agora` command's sub-parsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "conformance",
        help="run the NGSI-LD conformance kit against a broker",
        description="Run the NGSI-LD conformance kit (ETSI GS CIM 009 V1.9.1) against any broker URL and report per "
        "clause. The kit starts a notification receiver, an @context server and NGSI-LD context sources on this "
        "machine (and an MQTT listener with --mqtt); the broker under test must be able to reach them.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", help="broker base URL, e.g. http://127.0.0.1:1026 (required unless --list)")
    parser.add_argument("--tenant", help="NGSI-LD tenant for every request (NGSILD-Tenant header)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header for every request, e.g. 'Authorization: Bearer <token>' for a secured broker; repeatable",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="CLAUSES",
        help="comma-separated clauses (a clause selects its sub-clauses), groups (entities, batch, ...) or case "
        "names; repeatable",
    )
    parser.add_argument(
        "--report",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help=f"write a report; the extension chooses the format ({', '.join(WRITERS)}); repeatable",
    )
    parser.add_argument(
        "--with",
        dest="with_features",
        action="append",
        default=[],
        choices=sorted(FEATURES),
        metavar="FEATURE",
        help=f"declare an optional feature present, skipping its detection; one of {', '.join(sorted(FEATURES))}",
    )
    parser.add_argument(
        "--without",
        dest="without_features",
        action="append",
        default=[],
        choices=sorted(FEATURES),
        metavar="FEATURE",
        help="declare an optional feature absent: its cases are not implemented",
    )
    parser.add_argument(
        "--known-gaps",
        choices=["auto", *PRODUCTS],
        default="auto",
        help="known-gaps table to apply (default auto: Agora's when the broker is Agora)",
    )
    parser.add_argument("--receiver-host", default="127.0.0.1", help="address of the notification receiver")
    parser.add_argument("--receiver-port", type=int, default=0, help="port of the notification receiver (0: free)")
    parser.add_argument("--context-host", default="127.0.0.1", help="address of the @context document server")
    parser.add_argument("--context-port", type=int, default=0, help="port of the @context document server (0: free)")
    parser.add_argument("--source-host", default="127.0.0.1", help="address of the kit's context sources")
    parser.add_argument("--source-port", type=int, default=0, help="port of the kit's context sources (0: free)")
    parser.add_argument(
        "--public-host",
        help="host name the broker uses to reach the kit's servers (default: the address they listen on)",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        help="MQTT broker the kit listens on (mqtt://host:port); enables the MQTT notification cases",
    )
    parser.add_argument(
        "--mqtt-endpoint",
        metavar="URL",
        help="the same MQTT broker as the NGSI-LD broker reaches it, when that differs from --mqtt",
    )
    parser.add_argument("--notify-timeout", type=float, default=5.0, help="seconds to wait for a notification")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    parser.add_argument("--list", action="store_true", help="list the selected cases and the coverage, run nothing")
    parser.add_argument("--quiet", action="store_true", help="print only failures and the summary")


def parse_headers(values: list[str]) -> dict[str, str]:
    """'Name: value' strings as a header mapping; ValueError for one without a name."""
    headers = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header {value!r} is not 'NAME: VALUE'")
        headers[name.strip()] = text.strip()
    return headers


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        broker=args.broker,
        tenant=args.tenant,
        headers=parse_headers(args.header),
        only=args.only,
        with_features=args.with_features,
        without_features=args.without_features,
        known_gaps=args.known_gaps,
        receiver_host=args.receiver_host,
        receiver_port=args.receiver_port,
        context_host=args.context_host,
        context_port=args.context_port,
        source_host=args.source_host,
        source_port=args.source_port,
        public_host=args.public_host,
        mqtt=args.mqtt,
        mqtt_endpoint=args.mqtt_endpoint,
        notify_timeout=args.notify_timeout,
        http_timeout=args.timeout,
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    cases = select(load_cases(), args.only)
    if args.list:
        return list_cases(cases, out)
    if not args.broker:
        print("agora conformance: --broker URL is required", file=sys.stderr)
        return 2
    bad = [p for p in args.report if p.suffix.lower() not in WRITERS]
    if bad:
        print(f"agora conformance: unknown report format {bad[0]} (use {', '.join(WRITERS)})", file=sys.stderr)
        return 2
    try:
        options = options_from(args)
    except ValueError as exc:
        print(f"agora conformance: {exc}", file=sys.stderr)
        return 2
    if not reachable(args.broker, args.timeout):
        print(f"agora conformance: no NGSI-LD broker answers at {args.broker}{API}", file=sys.stderr)
        return 2
    return run_and_report(cases, options, args.report, args.quiet, out)


def run_and_report(cases: list[Case], options: Options, reports: list[Path], quiet: bool, out: TextIO) -> int:
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    results: list[Result] = []
    with open_run(options) as context:
        gaps = known_gaps_for(context, options.known_gaps)
        for case in cases:
            result = execute(case, context, gaps)
            results.append(result)
            if not quiet or result.outcome == FAILED:
                print_result(result, out)
        features = dict(context.features)
    info = RunInfo(options.broker, options.tenant, started, time.monotonic() - clock, features, coverage(cases))
    for path in reports:
        write_report(path, results, info)
        print(f"report written: {path}", file=out)
    print_coverage(info.coverage, out)
    for result in fixed_gaps(results):
        print(
            f"known gap no longer reproduces: {result.case.name} (remove it from conformance/known_gaps.py)", file=out
        )
    print(summary_line(results), file=out)
    return 1 if any(r.outcome == FAILED for r in results) else 0


def print_result(result: Result, out: TextIO) -> None:
    line = f"{SYMBOLS[result.outcome]} {result.case.clause:<8} {result.case.name}"
    if result.outcome != PASSED and result.message:
        line += f": {result.message.splitlines()[0]}"
    if result.gap and result.outcome != PASSED:
        line += f" [known gap, {result.gap.ref}]"
    print(line, file=out)


def print_coverage(rows: list[tuple[str, str, int]], out: TextIO) -> None:
    missing = [clause for clause, _, n in rows if n == 0]
    print(
        f"coverage: {len(rows) - len(missing)} of {len(rows)} inventory clauses have cases; without: "
        f"{', '.join(missing) or 'none'}",
        file=out,
    )


def list_cases(cases: list[Case], out: TextIO) -> int:
    for case in cases:
        feature = f" [{case.feature}]" if case.feature else ""
        print(f"{case.clause:<8} {case.name}{feature}: {case.requirement}", file=out)
    for clause, name, n in coverage(cases):
        print(f"  {clause:<7} {n:>3} case(s)  {name}", file=out)
    print_coverage(coverage(cases), out)
    return 0


def reachable(broker: str, timeout: float) -> bool:
    try:
        httpx.get(broker.rstrip("/") + API + "/types", timeout=timeout)
    except httpx.HTTPError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agora conformance")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
