"""Metrics, request ids and JSON logs through a real `agora serve --workers 2` (records 0242, 0243): the counters
scraped from /metrics move exactly as the requests sent, summed over both workers; a request's X-Request-Id is
echoed, logged, and carried by the notification its write triggers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.support.receiver import running_receiver
from tests.support.servers import running_broker

pytestmark = pytest.mark.e2e

ENTITIES = "/ngsi-ld/v1/entities"


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample of the exposition."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            found[key] = float(value)
    return found


def _value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        got = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and all(got.get(k) == v for k, v in labels.items()):
            total += value
    return total


def _scrape(url: str) -> dict[str, float]:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def test_metrics_request_ids_and_json_logs_under_load(tmp_path: Path) -> None:
    n = 40
    with running_receiver() as receiver, running_broker(
        f"sqlite:///{tmp_path / 'agora.db'}",
        tmp_path,
        workers=2,
        extra_args=("--log-level", "info", "--log-format", "json"),
    ) as broker:
        sub = {
            "id": "urn:ngsi-ld:Subscription:obs",
            "type": "Subscription",
            "entities": [{"type": "Meter"}],
            "notification": {"endpoint": {"uri": receiver.url + "/obs"}},
        }
        assert httpx.post(broker.url + "/ngsi-ld/v1/subscriptions", json=sub).status_code == 201
        before = _scrape(broker.url)
        entity_op = "/ngsi-ld/v1/entities/{entity_id:segment}"
        for i in range(n):
            # One connection per request: the kernel spreads them over both workers.
            body = {"id": f"urn:ngsi-ld:Meter:{i}", "type": "Meter", "v": {"type": "Property", "value": i}}
            created = httpx.post(broker.url + ENTITIES, json=body, headers={"X-Request-Id": f"load-{i}"})
            assert created.status_code == 201, created.text
            assert created.headers["x-request-id"] == f"load-{i}"
            assert httpx.get(f"{broker.url}{ENTITIES}/urn:ngsi-ld:Meter:{i}").status_code == 200
        assert httpx.get(f"{broker.url}{ENTITIES}/urn:ngsi-ld:Meter:missing").status_code == 404
        made = httpx.get(broker.url + "/health", headers={"X-Request-Id": "bad id with spaces"})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"]), made.headers
        receiver.wait_until("/obs", lambda got: len(got) >= n)
        after = _scrape(broker.url)

        def moved(name: str, **labels: str) -> float:
            return _value(after, name, **labels) - _value(before, name, **labels)

        assert moved("agora_http_requests_total", operation=ENTITIES, method="POST", status="201") == n
        assert moved("agora_http_requests_total", operation=entity_op, method="GET", status="200") == n
        assert moved("agora_http_requests_total", operation=entity_op, method="GET", status="404") == 1
        assert moved("agora_http_request_duration_seconds_count", operation=ENTITIES, method="POST") == n
        assert moved("agora_store_operation_duration_seconds_count", operation="write") >= n
        sub_id = "urn:ngsi-ld:Subscription:obs"
        assert moved("agora_notifications_total", subscription=sub_id, outcome="delivered") == n
        assert _value(after, "agora_notification_queue_depth") == 0
        # Both workers answered: each has its own files in the run's directory, and the sum is the whole.
        pids = {json.loads(line)["pid"] for line in broker.log().splitlines() if line.startswith("{")}
        assert len(pids) >= 2, broker.log()[-2000:]

    headers = dict(receiver.headers)["/obs"]
    assert re.fullmatch(r"load-\d+", headers["X-Request-Id"]), headers
    notified = {h["X-Request-Id"] for _, h in receiver.headers}
    assert notified == {f"load-{i}" for i in range(n)}
    access = [json.loads(line) for line in broker.log().splitlines() if line.startswith("{")]
    posts = [r for r in access if r.get("logger") == "agora.access" and r.get("method") == "POST"]
    assert {r["request_id"] for r in posts if r["path"] == ENTITIES} == {f"load-{i}" for i in range(n)}
    assert all(r["operation"] == ENTITIES and r["status"] == 201 for r in posts if r["path"] == ENTITIES)


def test_the_grafana_dashboard_queries_only_metrics_the_broker_exports() -> None:
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "agora.json").read_text())
    exported = {
        "agora_http_requests_total",
        "agora_http_request_duration_seconds_bucket",
        "agora_store_operation_duration_seconds_bucket",
        "agora_store_errors_total",
        "agora_notification_queue_depth",
        "agora_notifications_total",
        "agora_context_cache_lookups_total",
    }
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"agora_\w+", expr)}
    assert used and used <= exported, used - exported


def test_agora_import_writes_its_counts_for_a_textfile_collector(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from tests.e2e.helpers import agora_cli
    from tests.e2e.test_import_gtfs import FEED

    metrics_file = tmp_path / "agora_import.prom"
    with running_broker(f"sqlite:///{tmp_path / 'agora.db'}", tmp_path) as broker:
        result = agora_cli("import", "gtfs", str(FEED), "--broker", broker.url, "--metrics-file", str(metrics_file))
        assert result.returncode == 0, result.stderr
        scraped = _scrape(broker.url)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics_file.read_text())
        for s in family.samples
    }
    sent = sum(v for (name, _), v in samples.items() if name == "agora_import_last_entities_sent")
    created = samples[("agora_import_last_entities", (("adapter", "gtfs"), ("outcome", "created")))]
    assert sent == created > 0 and f"entities sent: {int(sent)}" in result.stderr
    assert ("agora_import_last_success_timestamp_seconds", (("adapter", "gtfs"),)) in samples
    # The broker's side of the same import: its batch upserts.
    upserts = _value(scraped, "agora_http_requests_total", operation="/ngsi-ld/v1/entityOperations/upsert")
    assert upserts >= 1
