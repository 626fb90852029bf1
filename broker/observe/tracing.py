"""OpenTelemetry tracing (record 0246): a span per HTTP request, per store call and per notification delivery,
off unless `tracing` is set (AGORA_TRACING, `tracing = ...` in the configuration file).

    tracing = "console"   spans as JSON on stderr (the SDK's console exporter): for a look, or a log collector
    tracing = "otlp"      OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (the exporter's own variables), which needs
                          the package opentelemetry-exporter-otlp-proto-http installed

Off, nothing of OpenTelemetry is imported and the hot path pays one `is None` test per request; the store
methods are not wrapped and the notifier tests one module attribute per delivery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

#: The tracer once `configure` ran; None while tracing is off.
TRACER: Any = None
KINDS = ("", "console", "otlp")


def configure(kind: str, exporter: Any = None) -> None:
    """Turn tracing on in this process (`exporter`: a SpanExporter of one's own, for tests)."""
    global TRACER
    if kind not in KINDS:
        raise ValueError(f"tracing must be console or otlp (or empty: off), not {kind!r}")
    if (not kind and exporter is None) or (TRACER is not None and exporter is None):
        return  # off, or on already in this process (an app made twice)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "agora"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ValueError(
                "tracing = otlp needs the package opentelemetry-exporter-otlp-proto-http; install it, or use console"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    TRACER = provider.get_tracer("agora")


def traced_store_method(name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`method` inside a span `store.<name>` (a child of the request's span, when there is one)."""

    @wraps(method)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        with TRACER.start_as_current_span(f"store.{name}", attributes={"db.operation": name}):
            return await method(*args, **kwargs)

    return traced
