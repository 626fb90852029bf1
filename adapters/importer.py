"""Write an adapter's entities to any NGSI-LD broker with batch upserts (clause 5.6.8; docs/decisions/0032).

``--validate`` checks each entity against the JSON Schema of its type before sending it (``validated``; a failing
entity is reported with its reasons, not sent); ``--prune`` then deletes the entities of the adapter's types and
network that this import did not send (``prune``, clauses 5.6.10 and 6.17; decision 0035).

The entities go in chunks to ``POST /ngsi-ld/v1/entityOperations/upsert?options=update`` as application/json with
a Link header naming the project @context: either a URL given by the caller, or the project context hosted by the
broker's ``/ngsi-ld/v1/jsonldContexts`` (clause 5.13.2), posted only when no identical copy is hosted yet.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from itertools import chain, islice
from typing import Any, TypeVar
from urllib.parse import urljoin

import httpx

from adapters.base import Adapter, Entity, SourceError, TemporalFragment, _quote
from adapters.telemetry import new_instances
from adapters.validate import schema_errors

T = TypeVar("T")
API = "/ngsi-ld/v1"
PAGE = 1000  # the largest page most brokers allow (NGSI-LD leaves it to the broker)
IDS_PER_READ = 100  # ids per GET /entities?id=... of --changed-only (keeps the URL under common 8 KB limits)
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
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (entity id, reasons) failing --validate
    sent_ids: set[str] = field(default_factory=set)  # kept only for --prune
    pruned: int = 0
    prune_skipped: bool = False  # --prune asked, but the import was partial (refused, invalid, differential source)
    unchanged: int = 0  # --follow: entities of the source identical to the previous round's, not sent
    context_url: str | None = None
    temporal: int = 0  # attribute instances added through the temporal API (TemporalFragment)

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def primed(entities: Iterable[Entity]) -> Iterator[Entity]:
    """``entities`` with the first one read now: an adapter that checks its whole source before its first entity
    (EPANET) refuses a bad file before anything, the project @context included, is sent to the broker."""
    iterator = iter(entities)
    first = next(iterator, None)
    return iterator if first is None else chain([first], iterator)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
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


def hosted_copy(client: httpx.Client, document: dict[str, Any]) -> str | None:
    """The URL of a copy of ``document`` the broker hosts already, if any."""
    listing = client.get(f"{API}/jsonldContexts", params={"kind": "Hosted"})
    if listing.status_code == 200 and isinstance(listing.json(), list):
        for url in listing.json()[:MAX_HOSTED_CHECKED]:
            served = client.get(url)
            if served.status_code == 200 and served.json() == document:
                return str(url)
    return None


def host_context(client: httpx.Client, document: dict[str, Any]) -> str:
    """The absolute URL of ``document`` hosted by the broker: an identical hosted copy, else a new one."""
    found = hosted_copy(client, document)
    if found is not None:
        return found
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


# The members of an attribute instance that carry its data (system members such as modifiedAt are left out).
DATA_MEMBERS = ("type", "value", "object", "languageMap", "objectList", "valueList", "vocab", "json", "unitCode",
                "observedAt", "datasetId", "objectType")  # fmt: skip


def _data(attribute: Any) -> Any:
    instances = attribute if isinstance(attribute, list) else [attribute]
    found = []
    for instance in instances:
        if not isinstance(instance, dict):
            return attribute
        data = {m: instance[m] for m in DATA_MEMBERS if m in instance}
        data.update({k: _data(v) for k, v in instance.items() if k not in DATA_MEMBERS and isinstance(v, dict | list)})
        found.append(data)
    return sorted(found, key=lambda d: str(d.get("datasetId", "")))


def stored_as_translated(entity: Entity, stored: Entity | None) -> bool:
    """True when every attribute of ``entity`` is stored with the same data (an upsert with update would change
    nothing; attributes the broker has beyond them are kept by such an upsert anyway)."""
    if stored is None or stored.get("type") != entity.get("type"):
        return False
    for name, attribute in entity.items():
        if name in ("id", "type", "@context"):
            continue
        if name not in stored or _data(attribute) != _data(stored[name]):
            return False
    return True


def unchanged_removed(
    client: httpx.Client, chunk: list[Entity], link: dict[str, str], report: ImportReport
) -> list[Entity]:
    """``chunk`` without the entities the broker already stores as they are.

    Read with `GET /entities?type=T&id=a,b,...` (clause 6.4.3.2), ``IDS_PER_READ`` ids at a time: a short URL, and
    an id look-up where the POST query's one selector per entity measured 35 ms each on Agora.
    """
    stored: dict[str, Entity] = {}
    by_type: dict[str, list[str]] = {}
    for entity in chunk:
        by_type.setdefault(str(entity["type"]), []).append(str(entity["id"]))
    for entity_type, ids in by_type.items():
        for part in chunks(ids, IDS_PER_READ):
            params: dict[str, str | int] = {"type": entity_type, "id": ",".join(part), "limit": len(part)}
            response = client.get(f"{API}/entities", params=params, headers=link)
            if response.status_code != 200 or not isinstance(response.json(), list):
                return chunk  # a broker that cannot answer: write everything, as without --changed-only
            stored.update((str(e.get("id")), e) for e in response.json() if isinstance(e, dict))
    changed = [e for e in chunk if not stored_as_translated(e, stored.get(e["id"]))]
    report.unchanged += len(chunk) - len(changed)
    return changed


def validated(entities: Iterable[Entity], invalid: list[tuple[str, str]]) -> Iterator[Entity]:
    """The entities that validate against the JSON Schema of their type; the others go to ``invalid``."""
    for entity in entities:
        errors = schema_errors(entity)
        if errors:
            invalid.append((str(entity.get("id")), "; ".join(errors)))
        else:
            yield entity


def id_prefix(entity_type: str, network: str) -> str:
    """The id prefix shared by the entities of one type and network (``Adapter.entity_id``)."""
    return f"urn:ngsi-ld:{entity_type}:{_quote(network)}:"


def stored_ids(client: httpx.Client, entity_type: str, prefix: str, headers: dict[str, str]) -> Iterator[str]:
    """The ids of the stored entities of ``entity_type`` whose id starts with ``prefix``, page by page."""
    offset = 0
    while True:
        params: dict[str, str | int] = {
            "type": entity_type, "idPattern": f"^{re.escape(prefix)}", "pick": "id", "limit": PAGE, "offset": offset,
        }  # fmt: skip
        response = client.get(f"{API}/entities", params=params, headers=headers)
        if response.status_code != 200:
            raise ImportFailed(f"listing {entity_type} entities for --prune failed: {_problem(response)}")
        page = response.json()
        yield from (str(e["id"]) for e in page)
        if len(page) < PAGE:
            return
        offset += PAGE


def prune(
    client: httpx.Client, types: Iterable[str], network: str, headers: dict[str, str], report: ImportReport
) -> None:
    """Delete the stored entities of ``types`` and ``network`` that this import did not send."""
    stale = [
        eid
        for entity_type in sorted(set(types))
        for eid in stored_ids(client, entity_type, id_prefix(entity_type, network), headers)
        if eid not in report.sent_ids
    ]
    for chunk in chunks(stale, PAGE):
        response = client.post(f"{API}/entityOperations/delete", json=chunk, headers=headers)
        if response.status_code == 204:
            report.pruned += len(chunk)
        elif response.status_code == 207:
            body = response.json()
            report.pruned += len(body.get("success", []))
            for err in body.get("errors", []):
                detail = err.get("error", {})
                report.failed.append((err.get("entityId", "?"), f"prune: {detail.get('detail') or detail}"))
        else:
            raise ImportFailed(f"batch delete for --prune refused: {_problem(response)}")


def post_temporal(
    client: httpx.Client, fragment: TemporalFragment, headers: dict[str, str], report: ImportReport
) -> None:
    """Add a fragment's instances to the entity's history (clause 5.6.11, POST /temporal/entities: 201 or 204)."""
    fragment = new_instances(client, fragment, headers)  # those already recorded are not sent twice
    if not any(isinstance(v, list) for v in fragment.values()):
        return
    response = client.post(f"{API}/temporal/entities", json=dict(fragment), headers=headers)
    if response.status_code in (201, 204):
        report.temporal += sum(len(v) for v in fragment.values() if isinstance(v, list))
    elif response.status_code in (400, 404, 409, 422):
        report.failed.append((str(fragment.get("id")), f"temporal: {_problem(response)}"))
    else:
        raise ImportFailed(f"temporal upsert refused: {_problem(response)}")


def run_import(
    entities: Iterable[Entity],
    broker: str,
    *,
    tenant: str | None = None,
    context: str | None = None,
    chunk_size: int = 500,
    timeout: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
    validate: bool = False,
    prune_scope: Callable[[], tuple[Iterable[str], str] | None] | None = None,
    keep_ids: set[str] | None = None,
    compare: bool = False,
) -> ImportReport:
    """Upsert ``entities`` into the broker at ``broker`` (its base URL) and tell what happened.

    ``prune_scope``, called once every entity was sent, gives the entity types and the network to prune (None: the
    source was partial, prune nothing); nothing is pruned when entities were invalid or refused (a partial import
    must not delete what it failed to rewrite).
    ``keep_ids`` (--follow) are ids of the source that were not sent because they did not change: not pruned.
    With ``compare``, each chunk's stored versions are read first and the entities already stored as they are
    translated are not written again (counted as unchanged): a re-import writes nothing, notifies no one.
    """
    report = ImportReport()
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    stream = validated(entities, report.invalid) if validate else entities
    try:
        with httpx.Client(base_url=broker, timeout=timeout, headers=headers) as client:
            url = context or host_context(client, project_context())
            report.context_url = url
            link = {"Link": f"<{url}>; {LINK_REL}"}
            for mixed in chunks(stream, chunk_size):
                # Telemetry adapters yield the temporal evolution of their entities among them: sent after the chunk.
                fragments = [e for e in mixed if isinstance(e, TemporalFragment)]
                chunk = [e for e in mixed if not isinstance(e, TemporalFragment)]
                for entity in chunk:
                    report.sent[entity["type"]] += 1
                    if prune_scope is not None:
                        report.sent_ids.add(entity["id"])
                if chunk and compare:
                    chunk = unchanged_removed(client, chunk, link, report)
                if chunk:
                    upsert_chunk(client, chunk, link, report)
                for fragment in fragments:
                    post_temporal(client, fragment, link, report)
                if on_progress:
                    on_progress(report.total, report.temporal)
            scope = prune_scope() if prune_scope is not None and not report.failed and not report.invalid else None
            if scope is not None:
                types, network = scope
                report.sent_ids |= keep_ids or set()
                prune(client, [*types, *report.sent], network, link, report)
            elif prune_scope is not None:
                report.prune_skipped = True
    except httpx.HTTPError as exc:
        raise ImportFailed(f"cannot talk to the broker at {broker}: {exc}") from exc
    return report


# -- --follow: poll a source and apply only the changes (decision 0035) -------------------------------------------
def _digest(entity: Entity) -> str:
    text = json.dumps(entity, sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def changed_only(entities: Iterable[Entity], seen: dict[str, str], current: set[str]) -> Iterator[Entity]:
    """The entities that differ from the previous round's version; the ids of all of them go to ``current``."""
    for entity in entities:
        eid = str(entity["id"])
        digest = _digest(entity)
        current.add(eid)
        if seen.get(eid) != digest:
            seen[eid] = digest
            yield entity


def follow(
    make_adapter: Callable[[], Adapter],
    source: str,
    broker: str,
    *,
    interval: float,
    rounds: int | None = None,
    prune_each_round: bool = False,
    on_round: Callable[[int, ImportReport, Adapter], None] | None = None,
    on_error: Callable[[int, Exception], None] | None = None,
    **options: Any,
) -> int:
    """Poll ``source`` every ``interval`` seconds and upsert only the entities that changed; 0, or 3 when the last
    round had problems. A round that fails (source or broker unreachable) is reported and the next one resends all.
    """
    seen: dict[str, str] = {}
    context = options.pop("context", None)
    status = 0
    number = 0
    while rounds is None or number < rounds:
        number += 1
        started = time.monotonic()
        adapter = make_adapter()
        current: set[str] = set()

        def scope(adapter: Adapter = adapter) -> tuple[Iterable[str], str] | None:
            return prune_scope(adapter)

        try:
            report = run_import(
                changed_only(adapter.entities(source), seen, current), broker, context=context,
                prune_scope=scope if prune_each_round else None, keep_ids=current, compare=True, **options,
            )  # fmt: skip
            report.unchanged += len(current) - report.total - len(report.invalid)  # plus those not even sent
            context = context or report.context_url
            for eid, _ in [*report.failed, *report.invalid]:
                seen.pop(eid, None)  # not written: send again next round
            for eid in set(seen) - current:
                del seen[eid]  # gone from the source: memory holds one round's ids
            status = 3 if report.failed or report.invalid or adapter.rejections else 0
            if on_round:
                on_round(number, report, adapter)
        except (SourceError, ImportFailed) as exc:
            seen.clear()
            status = 1
            if on_error:
                on_error(number, exc)
        if rounds is None or number < rounds:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return status


def follow_command(args: Any) -> int:
    """`agora import ADAPTER SOURCE --broker URL --follow SECONDS [--rounds N]`: one summary line per round."""
    from adapters.base import load_adapter

    if args.follow <= 0 or (args.rounds is not None and args.rounds < 1):
        print("agora import: --follow needs a positive interval and --rounds a positive count", file=sys.stderr)
        return 2
    if args.dry_run or not args.broker:
        print("agora import: --follow needs --broker URL (and no --dry-run)", file=sys.stderr)
        return 2
    try:
        factory = load_adapter(args.adapter)
    except KeyError as exc:
        print(f"agora import: {exc.args[0]}", file=sys.stderr)
        return 2

    def on_round(number: int, report: ImportReport, adapter: Adapter) -> None:
        line = (f"round {number}: sent {report.total} (created {report.created}, updated {report.updated}), "
                f"unchanged {report.unchanged}, refused {len(report.failed)}, invalid {len(report.invalid)}, "
                f"rejected rows {len(adapter.rejections)}")  # fmt: skip
        if args.prune:
            line += f", pruned {report.pruned}" + (" (skipped: partial)" if report.prune_skipped else "")
        print(line, file=sys.stderr, flush=True)
        for problem in [*report.failed, *report.invalid]:
            print(f"  {problem[0]}: {problem[1]}", file=sys.stderr)
        for rejection in adapter.rejections:
            print(f"  {rejection}", file=sys.stderr)

    def on_error(number: int, exc: Exception) -> None:
        print(f"round {number}: failed: {exc}", file=sys.stderr, flush=True)

    try:
        return follow(
            lambda: factory(network=args.network), args.source, args.broker, interval=args.follow,
            rounds=args.rounds, prune_each_round=args.prune, on_round=on_round, on_error=on_error,
            tenant=args.tenant, context=args.context, chunk_size=args.chunk_size, validate=args.validate,
        )  # fmt: skip
    except KeyboardInterrupt:
        return 0


def prune_scope(adapter: Adapter) -> tuple[Iterable[str], str] | None:
    """What `--prune` may delete after ``adapter`` ran: its types in its network, nothing after a partial source."""
    if not adapter.complete:
        return None
    return adapter.entity_types, adapter.network or "default"
