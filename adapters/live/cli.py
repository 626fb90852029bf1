"""`agora ingest mqtt|opcua|modbus MAPPING --broker URL`: live field data into a broker (record 0380)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from adapters.importer import ImportFailed, Progress
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
        "until interrupted (or --count messages); prints a summary table at the end.",
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
    mqtt.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", help="MQTT broker URL (mqtt:// or mqtts://)")
    mqtt.add_argument("--client-id", default="agora-ingest", help="MQTT client id: the persistent session's name")
    mqtt.add_argument("--protocol", choices=["5", "3.1.1"], default="5", help="MQTT protocol version (default 5)")
    mqtt.add_argument("--username", help="MQTT user name")
    mqtt.add_argument("--password", help="MQTT password")
    mqtt.add_argument(
        "--receive-maximum", type=int, default=10000,
        help="MQTT 5: unacknowledged messages the MQTT broker may send at once (default 10000)",
    )  # fmt: skip
    opcua = _common(kinds.add_parser(
        "opcua", help="subscribe to OPC UA nodes",
        description="Subscribe to the nodes of the mapping's opcua rules (data changes, with their source "
        "timestamps) on the OPC UA server at --server.", epilog=_MAPPING_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ))  # fmt: skip
    opcua.add_argument("--server", required=True, help="OPC UA endpoint, e.g. opc.tcp://127.0.0.1:4840")
    opcua.add_argument("--interval", type=float, default=500, help="publishing interval in milliseconds")
    modbus = _common(kinds.add_parser(
        "modbus", help="poll Modbus TCP registers",
        description="Poll the registers of the mapping's modbus rules on the Modbus TCP server at --server every "
        "--interval seconds.", epilog=_MAPPING_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    ))  # fmt: skip
    modbus.add_argument("--server", required=True, help="Modbus TCP server, host:port")
    modbus.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("mapping", metavar="MAPPING", help="the mapping file (YAML)")
    parser.add_argument("--broker", required=True, help="NGSI-LD broker base URL, e.g. http://127.0.0.1:1026")
    parser.add_argument("--tenant", help="NGSI-LD tenant (NGSILD-Tenant header)")
    parser.add_argument("--context", help="@context URL to send (default: host the project context on the broker)")
    parser.add_argument("--batch-size", type=int, default=1000, help="most messages per batch upsert (default 1000)")
    parser.add_argument(
        "--parallel", type=int, default=4,
        help="concurrent upsert requests per batch, entities spread over them (default 4)",
    )  # fmt: skip
    parser.add_argument("--count", type=int, help="stop after this many messages (default: run until interrupted)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
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
    broker = BrokerOptions(args.broker, args.tenant, args.context, args.batch_size, parallel=args.parallel)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    try:
        stats = asyncio.run(ingest(mapping, broker, source, count=args.count, progress=Progress(unit="messages")))
    except ImportFailed as exc:
        print(f"agora ingest: {exc}", file=sys.stderr)
        return 1
    print_summary(stats)
    return 3 if stats.malformed or stats.refused else 0
