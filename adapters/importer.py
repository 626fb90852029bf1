"""Write an adapter's entities to any NGSI-LD broker with batch upserts (clause 5.6.8; docs/decisions/0032).

The entities go in chunks to ``POST /ngsi-ld/v1/entityOperations/upsert?options=update`` as application/json with
a Link header naming the project @context: either a URL given by the caller, or the project context hosted by the
broker's ``/ngsi-ld/v1/jsonldContexts`` (clause 5.13.2), posted only when no identical copy is hosted yet.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from itertools import islice
from typing import Any, TextIO
from urllib.parse import urljoin

import httpx

from adapters.base import Entity

API = "/ngsi-ld/v1"
MAX_HOSTED_CHECKED = 100  # hosted contexts compared with the project context before hosting a new copy
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


class ImportFailed(Exception):
    """The broker cannot be reached, or refused a request as a whole."""


def project_context() -> dict[str, Any]:
    """The project @context document shipped in ontologies/."""
    text = resources.files("ontologies").joinpath("agora-context.jsonld").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@dataclass
class ImportReport:
    sent: Counter[str] = field(default_factory=Counter)  # entity type -> entities sent
    created: int = 0
    updated: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (entity id, reason) refused by the broker

    @property
    def total(self) -> int:
        return sum(self.sent.values())


class Progress:
    """A one-line progress printer on stderr: rewritten in place on a terminal, a plain line per step otherwise."""

    def __init__(self, stream: TextIO | None = None, every: float = 1.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.start = self.last = time.monotonic()

    def line(self, count: int) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        return f"{count} entities, {count / elapsed:,.0f}/s, {elapsed:.1f} s"

    def update(self, count: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line(count))
        else:
            self.stream.write(self.line(count) + "\n")
        self.stream.flush()

    def done(self, count: int) -> None:
        self.stream.write(("\r\x1b[K" if self.tty else "") + self.line(count) + "\n")
        self.stream.flush()


def chunks(entities: Iterable[Entity], size: int) -> Iterator[list[Entity]]:
    iterator = iter(entities)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        return f"HTTP {response.status_code} {body.get('type', '')}: {body.get('detail') or body.get('title', '')}"
    return f"HTTP {response.status_code}: {body}"


def host_context(client: httpx.Client, document: dict[str, Any]) -> str:
    """The absolute URL of ``document`` hosted by the broker: an identical hosted copy, else a new one."""
    listing = client.get(f"{API}/jsonldContexts", params={"kind": "Hosted"})
    if listing.status_code == 200 and isinstance(listing.json(), list):
        for url in listing.json()[:MAX_HOSTED_CHECKED]:
            served = client.get(url)
            if served.status_code == 200 and served.json() == document:
                return str(url)
    response = client.post(f"{API}/jsonldContexts", json=document)
    if response.status_code != 201 or "location" not in response.headers:
        raise ImportFailed(f"the broker did not host the project @context: {_problem(response)}")
    return urljoin(str(client.base_url), response.headers["location"])


def upsert_chunk(client: httpx.Client, chunk: list[Entity], headers: dict[str, str], report: ImportReport) -> None:
    response = client.post(f"{API}/entityOperations/upsert", params={"options": "update"}, json=chunk, headers=headers)
    ids = [e["id"] for e in chunk]
    if response.status_code == 201:  # the body lists the created ids, the others were updated
        created = set(response.json())
        report.created += len(created)
        report.updated += len(ids) - len(created)
    elif response.status_code == 204:
        report.updated += len(ids)
    elif response.status_code == 207:  # the success list does not tell created from updated
        body = response.json()
        errors = {e["entityId"]: e.get("error", {}) for e in body.get("errors", [])}
        report.updated += len(body.get("success", []))
        for eid, err in errors.items():
            report.failed.append((eid, f"{err.get('type', '')}: {err.get('detail') or err.get('title', '')}"))
    else:
        raise ImportFailed(f"batch upsert refused: {_problem(response)}")


def run_import(
    entities: Iterable[Entity],
    broker: str,
    *,
    tenant: str | None = None,
    context: str | None = None,
    chunk_size: int = 500,
    timeout: float = 60.0,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert ``entities`` into the broker at ``broker`` (its base URL) and tell what happened."""
    report = ImportReport()
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    try:
        with httpx.Client(base_url=broker, timeout=timeout, headers=headers) as client:
            url = context or host_context(client, project_context())
            link = {"Link": f"<{url}>; {LINK_REL}"}
            for chunk in chunks(entities, chunk_size):
                for entity in chunk:
                    report.sent[entity["type"]] += 1
                upsert_chunk(client, chunk, link, report)
                if on_progress:
                    on_progress(report.total)
    except httpx.HTTPError as exc:
        raise ImportFailed(f"cannot talk to the broker at {broker}: {exc}") from exc
    return report
