"""Running cases: selection (--only), the local helper servers, feature detection, known gaps, results."""

from __future__ import annotations

import importlib
import json
import pkgutil
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import httpx

from conformance import cases as cases_package
from conformance.features import detect
from conformance.helpers import ContextServer, MqttListener, Receiver, SourceServer
from conformance.inventory import INVENTORY, covers
from conformance.kit import API, REGISTRY, Case, CaseFailed, Exchange, FeatureMissing, Kit, RunContext
from conformance.known_gaps import PRODUCTS, KnownGap

PASSED, FAILED, NOT_IMPLEMENTED, KNOWN_GAP = "passed", "failed", "not implemented", "known gap"
OUTCOMES = (PASSED, FAILED, NOT_IMPLEMENTED, KNOWN_GAP)


@dataclass
class Result:
    case: Case
    outcome: str
    message: str = ""
    duration: float = 0.0
    exchanges: list[Exchange] = field(default_factory=list)
    gap: KnownGap | None = None  # set when the case is a known gap of the broker (failing or not)


@dataclass
class Options:
    """Everything a run needs besides the cases; filled from the CLI or the pytest options."""

    broker: str
    tenant: str | None = None
    #: Headers sent with every request, e.g. the auditor's credential for a secured broker.
    headers: Mapping[str, str] = field(default_factory=dict)
    only: Sequence[str] = ()
    with_features: Sequence[str] = ()
    without_features: Sequence[str] = ()
    known_gaps: str = "auto"  # auto | agora | none
    receiver_host: str = "127.0.0.1"
    receiver_port: int = 0
    context_host: str = "127.0.0.1"
    context_port: int = 0
    source_host: str = "127.0.0.1"
    source_port: int = 0
    public_host: str | None = None
    mqtt: str | None = None
    mqtt_endpoint: str | None = None
    notify_timeout: float = 5.0
    http_timeout: float = 10.0


def load_cases() -> list[Case]:
    """Import every module of conformance.cases (each registers its cases) and return them in a stable order."""
    for module in pkgutil.iter_modules(cases_package.__path__):
        importlib.import_module(f"{cases_package.__name__}.{module.name}")
    return list(REGISTRY.values())


def select(cases: Iterable[Case], only: Sequence[str]) -> list[Case]:
    """--only takes clause numbers (a clause selects its sub-clauses too), group names or case names."""
    tokens = [t.strip() for item in only for t in item.split(",") if t.strip()]
    if not tokens:
        return list(cases)
    return [c for c in cases if any(_matches(c, token) for token in tokens)]


def _matches(case: Case, token: str) -> bool:
    if token[0].isdigit():
        return any(covers(token, clause) for clause in case.clauses)
    return token in (case.group, case.name)


@contextmanager
def open_run(options: Options) -> Iterator[RunContext]:
    """Start the helper servers, detect features, and yield the shared RunContext; stop everything afterwards."""
    with ExitStack() as stack:
        receiver = Receiver(options.receiver_host, options.receiver_port, options.public_host)
        receiver.start()
        stack.callback(receiver.stop)
        contexts = ContextServer(options.context_host, options.context_port, options.public_host)
        contexts.start()
        stack.callback(contexts.stop)
        sources = SourceServer(options.source_host, options.source_port, options.public_host, options.broker)
        sources.start()
        stack.callback(sources.stop)
        run = RunContext(
            broker=options.broker,
            tenant=options.tenant,
            headers=dict(options.headers),
            receiver=receiver,
            contexts=contexts,
            sources=sources,
            notify_timeout=options.notify_timeout,
            http_timeout=options.http_timeout,
        )
        if options.mqtt:
            listener = MqttListener(options.mqtt, f"ngsi-ld-conformance/{run.run_id}")
            listener.start()
            stack.callback(listener.stop)
            run.mqtt, run.mqtt_endpoint = listener, options.mqtt_endpoint or options.mqtt
        _ensure_tenant(run)
        detect(run, options.with_features, options.without_features)
        yield run


def _ensure_tenant(run: RunContext) -> None:
    """Create (then delete) one entity in the auditor's tenant, so that a tenant new to the broker exists and reads
    answer ResourceNotFound rather than NonexistentTenant."""
    if not run.tenant:
        return
    entity_id = f"urn:ngsi-ld:Thing:conformance-{run.run_id}-tenant"
    headers = {**run.base_headers(), "Content-Type": "application/json"}
    base = run.broker.rstrip("/") + API
    with httpx.Client(base_url=base, headers=headers, timeout=run.http_timeout) as client:
        created = client.post("/entities", content=json.dumps({"id": entity_id, "type": "Thing"}))
        if created.status_code == 201:
            client.delete(f"/entities/{entity_id}")


def known_gaps_for(run: RunContext, choice: str) -> dict[str, KnownGap]:
    if choice != "auto":
        return PRODUCTS[choice]
    return PRODUCTS["agora"] if is_agora(run) else {}


def is_agora(run: RunContext) -> bool:
    """Agora names itself in /info/sourceIdentity (id urn:ngsi-ld:ContextSource:agora unless configured)."""
    try:
        response = httpx.get(run.broker.rstrip("/") + API + "/info/sourceIdentity", timeout=run.http_timeout)
        body = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(body, dict) and "agora" in str(body.get("id", "")).lower()


def execute(case: Case, run: RunContext, gaps: dict[str, KnownGap]) -> Result:
    """Run one case: feature check, the case itself, its clean-up; classify the outcome."""
    gap = gaps.get(case.name)
    present, why = run.features.get(case.feature, (True, "")) if case.feature else (True, "")
    if not present:
        return Result(case, NOT_IMPLEMENTED, f"{case.feature}: {why}", gap=gap)
    kit = Kit(run, case.name)
    started = time.monotonic()
    outcome, message = PASSED, ""
    try:
        case.check(kit)
    except FeatureMissing as exc:
        outcome, message = NOT_IMPLEMENTED, str(exc)
        if exc.feature == "tenancy":
            run.features["tenancy"] = (False, exc.why)
    except CaseFailed as exc:
        outcome, message = FAILED, str(exc)
    except httpx.HTTPError as exc:
        outcome, message = FAILED, f"HTTP transport error: {exc!r}"
    except Exception as exc:  # a broken case must not stop the run; it counts as failed, with its traceback
        outcome, message = FAILED, f"error in the case: {exc!r}\n{traceback.format_exc(limit=3)}"
    finally:
        problems = kit.close()
    if problems and outcome == PASSED:
        outcome, message = FAILED, f"clean-up failed: {'; '.join(problems)}"
    if outcome == FAILED and gap is not None:
        outcome = KNOWN_GAP
    exchanges = kit.recorder.exchanges if outcome in (FAILED, KNOWN_GAP) else []
    return Result(case, outcome, message, time.monotonic() - started, exchanges, gap)


def run_cases(cases: Iterable[Case], run: RunContext, gaps: dict[str, KnownGap]) -> list[Result]:
    return [execute(case, run, gaps) for case in cases]


def counts(results: Iterable[Result]) -> Counter[str]:
    return Counter(r.outcome for r in results)


def fixed_gaps(results: Iterable[Result]) -> list[Result]:
    """Known gaps whose case passed: the known-gaps table should lose that row."""
    return [r for r in results if r.gap is not None and r.outcome == PASSED]


def coverage(cases: Iterable[Case]) -> list[tuple[str, str, int]]:
    """(clause, title, number of cases) for every clause of the inventory."""
    case_list = list(cases)
    return [
        (clause, title, sum(1 for c in case_list if any(covers(clause, cc) for cc in c.clauses)))
        for clause, title in INVENTORY
    ]
