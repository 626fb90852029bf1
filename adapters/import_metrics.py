"""`agora import --metrics-file PATH`: the import's counts in the Prometheus text format (record 0243).

Adapters are clients of the broker (ARCHITECTURE decision 7), so their counts are the importer's to tell: the
broker itself sees only batch upserts. Each run rewrites the file (atomically: written aside, then renamed) with
gauges of that run, for node_exporter's textfile collector or any scraper of files:

    agora_import_last_entities{adapter, outcome}    created, updated, unchanged, refused, invalid, pruned,
                                                    rejected_rows
    agora_import_last_entities_sent{adapter, type}   entities sent, by entity type
    agora_import_last_duration_seconds{adapter}
    agora_import_last_success_timestamp_seconds{adapter}   when the run wrote everything (absent after a failure)
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from adapters.importer import ImportReport


def write_import_metrics(path: str, adapter: str, report: ImportReport, rejected_rows: int, seconds: float) -> None:
    registry = CollectorRegistry()
    outcomes = Gauge("agora_import_last_entities", "Entities of the last import run", ["adapter", "outcome"],
                     registry=registry)  # fmt: skip
    counts = {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "refused": len(report.failed),
        "invalid": len(report.invalid),
        "pruned": report.pruned,
        "rejected_rows": rejected_rows,
    }
    for outcome, count in counts.items():
        outcomes.labels(adapter, outcome).set(count)
    sent = Gauge("agora_import_last_entities_sent", "Entities sent by the last run, by type", ["adapter", "type"],
                 registry=registry)  # fmt: skip
    for entity_type, count in report.sent.items():
        sent.labels(adapter, entity_type).set(count)
    Gauge("agora_import_last_duration_seconds", "Duration of the last run", ["adapter"], registry=registry).labels(
        adapter
    ).set(seconds)
    if not (report.failed or report.invalid or rejected_rows):
        success = Gauge("agora_import_last_success_timestamp_seconds", "End of the last run that wrote everything",
                        ["adapter"], registry=registry)  # fmt: skip
        success.labels(adapter).set(time.time())
    write_to_textfile(path, registry)
