"""What a conformance case is, and the toolbox each case receives (`Kit`).

A case is a plain function `check(k: Kit) -> None` registered with `@case(clause, requirement, feature=...)`. It
talks to the broker only through `k.http` (an httpx client on the broker's /ngsi-ld/v1), fails with `k.fail(...)` or
one of the `k.expect_*` helpers, and registers what it creates for clean-up (`k.entity`, `k.cleanup`), so the kit
can run against a shared broker. Every HTTP exchange of a case is recorded so that a failure shows what was sent and
what came back.

Outcomes: CaseFailed (the broker does not do what the clause says) and FeatureMissing (the broker does not offer an
optional feature the case needs: "not implemented", never a failure).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conformance.helpers import ContextServer, KitSource, MqttListener, Receiver, SourceServer

API = "/ngsi-ld/v1"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LINK_REL = "http://www.w3.org/ns/json-ld#context"
JSON = "application/json"
LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
MAX_BODY_SHOWN = 2000


class CaseFailed(AssertionError):
    """The broker's answer contradicts the clause."""


class FeatureMissing(Exception):
    """The broker does not offer an optional feature the case needs."""

    def __init__(self, feature: str, why: str) -> None:
        super().__init__(f"{feature}: {why}")
        self.feature = feature
        self.why = why


@dataclass(frozen=True)
class Case:
    name: str  # "<group>.<function>", stable: it names the case in every report
    clause: str  # the most specific clause the requirement comes from
    requirement: str  # one sentence
    check: Callable[[Kit], None]
    feature: str | None = None  # optional feature the case needs (see conformance/features.py)
    also: tuple[str, ...] = ()  # further clauses the case exercises (e.g. the HTTP binding)

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def clauses(self) -> tuple[str, ...]:
        return (self.clause, *self.also)


REGISTRY: dict[str, Case] = {}


def case(
    clause: str, requirement: str, *, feature: str | None = None, also: tuple[str, ...] = ()
) -> Callable[[Callable[[Kit], None]], Callable[[Kit], None]]:
    """Register a conformance case; the function name, prefixed with its module's last name, is the case name."""

    def register(check: Callable[[Kit], None]) -> Callable[[Kit], None]:
        name = f"{check.__module__.rsplit('.', 1)[-1]}.{check.__name__}"
        if name in REGISTRY:
            raise ValueError(f"conformance case {name} registered twice")
        REGISTRY[name] = Case(name, clause, requirement, check, feature, also)
        return check

    return register


@dataclass
class Exchange:
    """One HTTP request and its response, kept as text for reports."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""

    def render(self) -> str:
        lines = [f"> {self.method} {self.url}"]
        lines += [f"> {k}: {v}" for k, v in self.request_headers.items()]
        if self.request_body:
            lines.append(f"> {self.request_body}")
        lines.append(f"< {self.status if self.status is not None else '(no response)'}")
        lines += [f"< {k}: {v}" for k, v in self.response_headers.items()]
        if self.response_body:
            lines.append(f"< {self.response_body}")
        return "\n".join(lines)


_SHOWN_REQUEST_HEADERS = ("content-type", "accept", "link", "ngsild-tenant", "prefer", "content-length")


def _shorten(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_BODY_SHOWN else text[:MAX_BODY_SHOWN] + f"... ({len(text)} characters)"


class Recorder:
    """httpx event hooks that keep every exchange of the current case."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def on_request(self, request: httpx.Request) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() in _SHOWN_REQUEST_HEADERS}
        try:
            body = _shorten(request.content)
        except httpx.RequestNotRead:  # a streamed (chunked) body: not kept
            body = "(streamed body)"
        self.exchanges.append(Exchange(request.method, str(request.url), headers, body))

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        for exchange in reversed(self.exchanges):
            if exchange.url == str(response.request.url) and exchange.status is None:
                exchange.status = response.status_code
                exchange.response_headers = dict(response.headers.items())
                exchange.response_body = _shorten(response.content)
                break


@dataclass
class RunContext:
    """What every case of one run shares: the broker, the local helper servers, detected features, ids."""

    broker: str
    tenant: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request (a credential)
    receiver: Receiver | None = None
    contexts: ContextServer | None = None
    sources: SourceServer | None = None
    mqtt: MqttListener | None = None
    mqtt_endpoint: str | None = None  # the MQTT broker URL as the NGSI-LD broker must reach it
    features: dict[str, tuple[bool, str]] = field(default_factory=dict)
    notify_timeout: float = 5.0
    http_timeout: float = 10.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def next_number(self) -> int:
        return next(self._counter)

    def base_headers(self) -> dict[str, str]:
        """The headers of every request of the run: the auditor's own, and the tenant."""
        return {**self.headers, **({"NGSILD-Tenant": self.tenant} if self.tenant else {})}


class Kit:
    """The toolbox of one case: an HTTP client on the broker, unique ids, assertions, clean-up."""

    def __init__(self, run: RunContext, case_name: str) -> None:
        self.run = run
        self.case_name = case_name
        self.recorder = Recorder()
        headers = run.base_headers()
        self.http = httpx.Client(
            base_url=run.broker.rstrip("/") + API,
            headers=headers,
            timeout=run.http_timeout,
            event_hooks={"request": [self.recorder.on_request], "response": [self.recorder.on_response]},
        )
        self._cleanups: list[Callable[[], object]] = []

    # -- identities -------------------------------------------------------------------------------------------------
    def uid(self, kind: str = "Thing") -> str:
        """An entity id no other run (and no other case) uses."""
        return f"urn:ngsi-ld:{kind}:conformance-{self.run.run_id}-{self.run.next_number()}"

    def type_name(self, base: str = "Thing") -> str:
        """An entity type name unique to this case, so type queries only see this case's entities."""
        return f"Conf{base}{self.run.run_id}N{self.run.next_number()}"

    def attr_name(self, base: str = "attr") -> str:
        return f"conf{base}{self.run.run_id}n{self.run.next_number()}"

    @staticmethod
    def expand(term: str) -> str:
        """The IRI a term takes with the default vocabulary of the core @context."""
        return DEFAULT_VOCAB + term

    # -- assertions -------------------------------------------------------------------------------------------------
    def fail(self, message: str) -> None:
        raise CaseFailed(message)

    def expect(self, condition: object, message: str) -> None:
        if not condition:
            raise CaseFailed(message)

    def expect_status(self, response: httpx.Response, *expected: int) -> None:
        if response.status_code not in expected:
            wanted = " or ".join(str(s) for s in expected)
            raise CaseFailed(
                f"{response.request.method} {response.request.url.path}: expected HTTP {wanted}, "
                f"got {response.status_code}"
            )

    def expect_problem(self, response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
        """An error response (clause 6.3.3): the status, application/json, a ProblemDetails body with `type`."""
        self.expect_status(response, status)
        content_type = response.headers.get("content-type", "")
        self.expect(
            content_type.split(";")[0].strip() == JSON,
            f"error response Content-Type is {content_type!r}, expected application/json (clause 6.3.3)",
        )
        body = self.json(response)
        self.expect(isinstance(body, dict) and "type" in body, "error body is not a ProblemDetails with a type")
        if error_type is not None:
            expected = ERRORS + error_type
            self.expect(body["type"] == expected, f"problem type {body['type']!r}, expected {expected!r}")
        return dict(body)

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CaseFailed(f"response body is not JSON: {response.text[:200]!r}") from None

    # -- feature detection inside a case ----------------------------------------------------------------------------
    def missing(self, feature: str, why: str) -> None:
        raise FeatureMissing(feature, why)

    def not_implemented_if(self, response: httpx.Response, feature: str) -> None:
        """A 501 (or a 404/405 without an NGSI-LD problem) on an optional feature's endpoint means "not offered"."""
        if response.status_code == 501 or (
            response.status_code in (404, 405) and not response.headers.get("content-type", "").startswith(JSON)
        ):
            raise FeatureMissing(
                feature, f"{response.request.method} {response.request.url.path} answered {response.status_code}"
            )

    # -- writes that clean up after themselves ----------------------------------------------------------------------
    def cleanup(self, action: Callable[[], object]) -> None:
        self._cleanups.append(action)

    def delete_later(self, path: str, headers: dict[str, str] | None = None) -> None:
        self.cleanup(lambda: self.http.delete(path, headers=headers))

    def entity(
        self, body: dict[str, Any], *, headers: dict[str, str] | None = None, content_type: str = JSON
    ) -> httpx.Response:
        """Create an entity that the case needs (201 expected) and delete it after the case."""
        response = self.post("/entities", body, headers=headers, content_type=content_type)
        self.expect_status(response, 201)
        self.delete_later(f"/entities/{body['id']}", headers=_tenant_only(headers))
        return response

    def post(
        self,
        path: str,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = JSON,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.post(path, content=json.dumps(body), headers=_with_type(headers, content_type), params=params)

    def patch(
        self,
        path: str,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = JSON,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.patch(path, content=json.dumps(body), headers=_with_type(headers, content_type), params=params)

    def put(
        self,
        path: str,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = JSON,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.put(path, content=json.dumps(body), headers=_with_type(headers, content_type), params=params)

    def get_entity(self, entity_id: str, **params: str) -> dict[str, Any]:
        response = self.http.get(f"/entities/{entity_id}", params=params)
        self.expect_status(response, 200)
        body = self.json(response)
        self.expect(isinstance(body, dict), "an entity is a JSON object")
        return dict(body)

    def query(self, params: dict[str, str], headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        response = self.http.get("/entities", params=params, headers=headers)
        self.expect_status(response, 200)
        body = self.json(response)
        self.expect(isinstance(body, list), "a query answers a JSON array of entities")
        return list(body)

    def close(self) -> list[str]:
        """Run the clean-ups (newest first); return what could not be cleaned up."""
        problems = []
        for action in reversed(self._cleanups):
            try:
                action()
            except Exception as exc:  # clean-up must go on after one failure
                problems.append(repr(exc))
        self.http.close()
        return problems

    # -- helper servers ---------------------------------------------------------------------------------------------
    @property
    def receiver(self) -> Receiver:
        if self.run.receiver is None:
            self.missing("notifications", "the kit runs without its notification receiver")
        assert self.run.receiver is not None
        return self.run.receiver

    @property
    def contexts(self) -> ContextServer:
        if self.run.contexts is None:
            self.missing("user-contexts", "the kit runs without its @context server")
        assert self.run.contexts is not None
        return self.run.contexts

    def source(self) -> KitSource:
        """A fresh context source of this case, served by the kit (register its `endpoint` with the broker)."""
        if self.run.sources is None:
            self.missing("registrations", "the kit runs without its context source server")
        assert self.run.sources is not None
        return self.run.sources.new()

    @property
    def mqtt(self) -> MqttListener:
        if self.run.mqtt is None or self.run.mqtt_endpoint is None:
            self.missing("mqtt", "no MQTT broker given (--mqtt URL)")
        assert self.run.mqtt is not None
        return self.run.mqtt

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout if timeout is not None else self.run.notify_timeout)
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()


def link_header(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="{LINK_REL}"; type="{LD_JSON}"'}


def _with_type(headers: dict[str, str] | None, content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, **(headers or {})}


def _tenant_only(headers: dict[str, str] | None) -> dict[str, str] | None:
    if not headers:
        return None
    kept = {k: v for k, v in headers.items() if k.lower() == "ngsild-tenant"}
    return kept or None
