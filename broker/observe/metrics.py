"""The broker's Prometheus metrics (record 0243), served at GET /metrics in the text exposition format.

One process: the default registry. `agora serve --workers N`: prometheus_client's multiprocess mode, a directory
per run (PROMETHEUS_MULTIPROC_DIR, set by `agora serve` before the workers start and emptied first); any worker
answers /metrics with the sum over every worker's files, so a scrape sees the whole broker whichever worker the
kernel gives it.

Label sets are bounded: `operation` is the route template (`/ngsi-ld/v1/entities/{entity_id:segment}`), never the
raw path; `subscription` is the subscription id for the first SUBSCRIPTION_LABELS subscriptions a process notifies,
then `other`, so that a broker with a million subscriptions cannot make a million series.
"""

from __future__ import annotations

import inspect
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from broker.core.errors import NgsiLdError
from broker.observe import tracing
from broker.store.base import Store

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Subscriptions that get a label of their own per process; the others are counted under `other`.
SUBSCRIPTION_LABELS = 100

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("agora_http_requests", "HTTP requests answered", ["operation", "method", "status"])
REQUEST_SECONDS = Histogram(
    "agora_http_request_duration_seconds", "Time to answer an HTTP request", ["operation", "method"], buckets=_LATENCY
)
STORE_SECONDS = Histogram(
    "agora_store_operation_duration_seconds", "Time of one call to the store", ["operation"], buckets=_LATENCY
)
STORE_ERRORS = Counter("agora_store_errors", "Store calls that raised", ["operation"])
NOTIFY_QUEUE = Gauge(
    "agora_notification_queue_depth", "Notifications waiting in the subscriptions' lanes", multiprocess_mode="livesum"
)
NOTIFICATIONS = Counter(
    "agora_notifications", "Notifications finished, by subscription and outcome", ["subscription", "outcome"]
)
CONTEXT_LOOKUPS = Counter("agora_context_cache_lookups", "@context term map look-ups", ["result"])
CONTEXT_HIT = CONTEXT_LOOKUPS.labels(result="hit")
CONTEXT_MISS = CONTEXT_LOOKUPS.labels(result="miss")

_subscription_labels: set[str] = set()


def subscription_label(sub_id: str) -> str:
    if sub_id in _subscription_labels:
        return sub_id
    if len(_subscription_labels) < SUBSCRIPTION_LABELS:
        _subscription_labels.add(sub_id)
        return sub_id
    return "other"


def notified(sub_id: str, ok: bool) -> None:
    NOTIFICATIONS.labels(subscription_label(sub_id), "delivered" if ok else "failed").inc()


class RequestMetrics:
    """The children of the request metrics, cached by label values: `labels()` takes a lock and builds a tuple,
    which a request should not pay twice."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def observe(self, operation: str, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((operation, method, status))
        if counter is None:
            counter = self._counters[(operation, method, status)] = REQUESTS.labels(operation, method, str(status))
        counter.inc()
        histogram = self._histograms.get((operation, method))
        if histogram is None:
            histogram = self._histograms[(operation, method)] = REQUEST_SECONDS.labels(operation, method)
        histogram.observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every worker of the run in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def prepare_multiprocess_dir(directory: str | None) -> str:
    """The directory of this run's metric files, emptied: a file left by an earlier run would add its counts."""
    path = Path(directory) if directory else Path(os.environ.get("TMPDIR", "/tmp")) / f"agora-metrics-{os.getpid()}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return str(path)


def worker_exited(pid: int) -> None:
    """A worker died or stopped: its live gauges (the queue depth) no longer count."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def instrument_store(store: Store) -> None:
    """Time every coroutine method of the Store contract on `store` (on the instance: the class and other stores
    are untouched); about a microsecond per call."""
    if getattr(store, "_agora_timed", False):
        return  # a store handed to several apps (tests) is timed once
    store._agora_timed = True  # type: ignore[attr-defined]
    names = [n for n, f in vars(Store).items() if inspect.iscoroutinefunction(f) and not n.startswith("_")]
    for name in names:
        if name in ("open", "close"):
            continue
        method = getattr(store, name, None)
        if method is not None:
            timed = _timed(name, method)
            setattr(store, name, timed if tracing.TRACER is None else tracing.traced_store_method(name, timed))


def _timed(name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    histogram, errors = STORE_SECONDS.labels(name), STORE_ERRORS.labels(name)

    @wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except NgsiLdError:
            raise  # an answer (a temporal entity not found, say), not a failure of the store
        except Exception:
            errors.inc()
            raise
        finally:
            histogram.observe(time.perf_counter() - start)

    return timed
