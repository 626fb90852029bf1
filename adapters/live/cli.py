"""`agora ingest mqtt|opcua|modbus MAPPING --broker URL`: live field data into a broker (record 0380)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from adapters.importer import ImportFailed
from adapters.live.mapping import IngestMapping, MappingError, load_mapping
from adapters.live.run import BrokerOptions, Source, ingest, print_summary

_MAPPING_HELP = """The mapping file (YAML) lists rules; each takes its data from one source kind:
  rules:
    - match: "city/weather/{device}/attrs"     # MQTT topic pattern ({name}: one level, final #: the rest)
      format: json                              # json | ultralight | senml | sparkplug
      type: WeatherObserved
      id: "urn:ngsi-ld:WeatherObserved:city:{device}"
      observedAt: ts                            # payload member with the observation time
      attributes: {t: {name: temperature, unit: CEL}}
      autoProvision: true                       # unknown devices and keys accepted (default)
      devices: {ws-1: {static: {name: North}}}  # provisioned devices, written at start-up
    - opcua: [{node: "ns=2;s=Pump1.Pressure", device: pump-1, key: pressure}]
      type: Pump
      id: "urn:ngsi-ld:Pump:plant:{device}"
      attributes: {pressure: {unit: BAR}}
    - modbus: [{device: meter-1, key: power, table: holding, address: 0, datatype: float32, unit_id: 1}]
      ...
See the README, 'Live ingestion'."""


def add_subcommand(sub: Any) -> None:
    ingest_parser = sub.add_parser(
        "ingest",
        help="ingest live field data (MQTT, OPC UA, Modbus) into a broker",
        description="Turn live field data into NGSI-LD attribute updates through a mapping file and write them to "
        "the broker at --broker (batch upsert, each value with its observedAt, so its history is recorded). Runs "
        "until interrupted (or --count messages), logs the counts so far every --stats-every seconds, and prints "
        "a summary table at the end. Each SOURCE takes MAPPING, --broker and its own flags: see "
        "`agora ingest SOURCE --help`. Exit 0 when everything was written, 1 on a fatal error, 2 on bad "
        "arguments, 3 when payloads were malformed or updates refused.",
        epilog=_MAPPING_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = ingest_parser.add_subparsers(dest="ingest_source", metavar="SOURCE")
    mqtt = _common(kinds.add_parser(
        "mqtt", help="subscribe to an MQTT broker (JSON, UltraLight 2.0, SenML, Sparkplug B payloads)",
        description="Subscribe to the topics of the mapping's match rules with QoS 1 in a persistent session and "
        "acknowledge each message only once the broker accepted its writes (at least once). A malformed payload "
        "is counted and logged, and acknowledged.", epilog=_MAPPING_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ))  # fmt: skip
    mqtt.add_argument(
        "--mqtt", metavar="URL", default="mqtt://127.0.0.1:1883",
        help="MQTT broker URL, mqtt://host:port or mqtts://host:port for TLS (default mqtt://127.0.0.1:1883)",
    )  # fmt: skip
    mqtt.add_argument(
        "--client-id", metavar="ID", default="agora-ingest",
        help="MQTT client id, the name of the persistent session: a restarted ingester with the same id gets the "
        "messages its predecessor had not acknowledged (default agora-ingest)",
    )  # fmt: skip
    mqtt.add_argument("--protocol", choices=["5", "3.1.1"], default="5", help="MQTT protocol version (default 5)")
    mqtt.add_argument("--username", metavar="NAME", help="MQTT user name (default: none, anonymous)")
    mqtt.add_argument("--password", metavar="SECRET", help="MQTT password (with --username)")
    mqtt.add_argument(
        "--receive-maximum", metavar="N", type=int, default=10000,
        help="MQTT 5: unacknowledged messages the MQTT broker may send at once (default 10000)",
    )  # fmt: skip
    opcua = _common(kinds.add_parser(
        "opcua", help="subscribe to OPC UA nodes",
        description="Subscribe to the nodes of the mapping's opcua rules (data changes, with their source "
        "timestamps) on the OPC UA server at --server.", epilog=_MAPPING_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ))  # fmt: skip
    opcua.add_argument("--server", metavar="URL", required=True,
                       help="OPC UA endpoint URL, e.g. opc.tcp://127.0.0.1:4840 (required)")  # fmt: skip
    opcua.add_argument(
        "--interval", metavar="MS", type=float, default=500,
        help="the subscription's publishing interval in milliseconds: the server sends the changes of each "
        "interval together (default 500)",
    )  # fmt: skip
    modbus = _common(kinds.add_parser(
        "modbus", help="poll Modbus TCP registers",
        description="Poll the registers of the mapping's modbus rules on the Modbus TCP server at --server every "
        "--interval seconds.", epilog=_MAPPING_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    ))  # fmt: skip
    modbus.add_argument("--server", metavar="HOST:PORT", required=True,
                        help="Modbus TCP server, e.g. 127.0.0.1:502 (required)")  # fmt: skip
    modbus.add_argument("--interval", metavar="SECONDS", type=float, default=1.0,
                        help="seconds between two polls of every point (default 1)")  # fmt: skip


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("mapping", metavar="MAPPING", help="the mapping file (YAML; its format is below)")
    parser.add_argument("--broker", metavar="URL", required=True,
                        help="NGSI-LD broker base URL, e.g. http://127.0.0.1:1026 (required)")  # fmt: skip
    parser.add_argument("--tenant", help="NGSI-LD tenant to write in (NGSILD-Tenant header; default: none)")
    parser.add_argument("--context", metavar="URL",
                        help="@context URL to send (default: host the project context on the broker)")  # fmt: skip
    parser.add_argument("--batch-size", metavar="N", type=int, default=1000,
                        help="most messages per batch upsert (default 1000)")  # fmt: skip
    parser.add_argument(
        "--parallel", metavar="N", type=int, default=4,
        help="concurrent upsert requests per batch, entities spread over them (default 4)",
    )  # fmt: skip
    parser.add_argument("--count", metavar="N", type=int,
                        help="stop after this many messages (default: run until interrupted)")  # fmt: skip
    parser.add_argument(
        "--stats-every", metavar="SECONDS", type=float, default=10.0,
        help="log the counts so far (received, written, rejected, pending) every SECONDS at level info; 0: only "
        "the summary at the end (default 10)",
    )  # fmt: skip
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info",
                        help="least severe log lines shown, on stderr (default info)")  # fmt: skip
    return parser


def _source(args: argparse.Namespace, mapping: IngestMapping) -> Source:
    if args.ingest_source == "mqtt":
        from adapters.live.mqtt import MqttOptions, mqtt_source

        options = MqttOptions(args.mqtt, args.client_id, args.protocol, 1, args.receive_maximum, args.username,
                              args.password)  # fmt: skip
        return mqtt_source(options, mapping)
    if args.ingest_source == "opcua":
        from adapters.live.opcua import opcua_source

        return opcua_source(args.server, mapping, args.interval)
    from adapters.live.modbus import modbus_source

    return modbus_source(args.server, mapping, args.interval)


def _not_an_outage(record: logging.LogRecord) -> bool:
    """False for a library's report of a lost connection (asyncua logs a traceback per outage): the ingester logs
    each outage itself, once (adapters.live.run.Outage)."""
    lost = record.exc_info is not None and isinstance(record.exc_info[1], OSError)
    return not (lost and record.name.startswith("asyncua"))


def quiet(level: str) -> None:
    """The libraries' own chatter (httpx: a line per request; asyncua: per publish; pymodbus: per connection
    attempt) only at --log-level debug: the ingester logs outages and counts itself."""
    if level != "debug":
        for name in ("httpx", "asyncua"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("pymodbus").setLevel(logging.ERROR)  # a warning per failed connection attempt
        for handler in logging.getLogger().handlers:  # a logger's filter would not see its children's records
            handler.addFilter(_not_an_outage)


def run(args: argparse.Namespace) -> int:
    """0 when everything was written, 1 on a fatal error, 2 on bad arguments, 3 when messages were malformed or
    updates refused."""
    if args.ingest_source is None:
        print("agora ingest: name a source: mqtt, opcua or modbus (see agora ingest --help)", file=sys.stderr)
        return 2
    try:
        mapping = load_mapping(args.mapping)
        source = _source(args, mapping)
    except (MappingError, ValueError) as exc:
        print(f"agora ingest: {exc}", file=sys.stderr)
        return 2
    if args.batch_size < 1 or args.parallel < 1 or (args.count is not None and args.count < 1):
        print("agora ingest: --batch-size, --parallel and --count are positive numbers", file=sys.stderr)
        return 2
    if args.stats_every < 0:
        print("agora ingest: --stats-every is a number of seconds, 0 or more", file=sys.stderr)
        return 2
    broker = BrokerOptions(args.broker, args.tenant, args.context, args.batch_size, parallel=args.parallel)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    quiet(args.log_level)
    try:
        stats = asyncio.run(ingest(mapping, broker, source, count=args.count, stats_every=args.stats_every))
    except ImportFailed as exc:
        print(f"agora ingest: {exc}", file=sys.stderr)
        return 1
    print_summary(stats)
    return 3 if stats.malformed or stats.refused else 0
