"""OpenTelemetry spans (record 0246): a server span per request named by its route, store calls as its children,
a span per notification delivery carrying the request id; nothing when tracing is off."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from broker.http.app import create_app
from broker.observe import tracing
from broker.settings import Settings
from tests.support.receiver import running_receiver


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setattr(tracing, "TRACER", None)
    exporter = InMemorySpanExporter()
    tracing.configure("", exporter=exporter)
    yield exporter
    monkeypatch.setattr(tracing, "TRACER", None)


def test_requests_store_calls_and_deliveries_are_spans(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with running_receiver() as receiver, TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}"))) as c:
        sub = {
            "type": "Subscription",
            "entities": [{"type": "Meter"}],
            "notification": {"endpoint": {"uri": receiver.url + "/t"}},
        }
        assert c.post("/ngsi-ld/v1/subscriptions", json=sub).status_code == 201
        entity = {"id": "urn:ngsi-ld:Meter:1", "type": "Meter", "v": {"type": "Property", "value": 1}}
        response = c.post("/ngsi-ld/v1/entities", json=entity, headers={"X-Request-Id": "trace-me"})
        assert response.status_code == 201
        receiver.wait_until("/t", lambda got: len(got) == 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(s.name == "notification" for s in spans.get_finished_spans()):
            time.sleep(0.05)
    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name == "POST /ngsi-ld/v1/entities")
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    assert request.attributes["agora.request_id"] == "trace-me"
    writes = [s for s in finished if s.name == "store.write" and s.parent is not None]
    assert any(s.parent.span_id == request.context.span_id for s in writes if s.parent)  # a child of the request
    delivery = next(s for s in finished if s.name == "notification")
    assert delivery.attributes is not None
    assert delivery.attributes["agora.request_id"] == "trace-me" and delivery.attributes["agora.delivered"] is True


def test_tracing_is_off_unless_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "TRACER", None)
    with TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 'a.db'}"))) as client:
        assert client.get("/health").status_code == 200
        store = client.app.state.broker.store  # type: ignore[attr-defined]
        # Timed for the metrics (one wrapper over the bound method), not wrapped again in a span.
        assert not hasattr(store.write.__wrapped__, "__wrapped__") and tracing.TRACER is None
    with pytest.raises(ValueError, match="tracing must be console or otlp"):
        Settings(tracing="jaeger")
