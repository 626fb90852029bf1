"""Optional features: detected once per run by a harmless probe, or declared by the auditor (--with / --without).

A broker without a feature gets "not implemented" for the cases that need it, never a wall of failures. A probe
counts a feature as absent when its collection answers 404, 405 or 501 (a route the broker does not have); any other
answer (even a 400 for the probe's own parameters) means the broker serves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

import httpx

from conformance.kit import API, RunContext

FEATURES: dict[str, str] = {
    "temporal": "Temporal API (clauses 5.6.11-5.6.16, 5.7.3-5.7.4, 6.18-6.22, 6.24)",
    "subscriptions": "Subscriptions (clauses 5.8, 6.10, 6.11)",
    "notifications": "HTTP notifications to the kit's receiver (clause 5.8.6 and 6.3.x)",
    "mqtt": "MQTT notifications (clause 7), needs --mqtt URL",
    "jsonld-contexts": "@context management (clauses 5.13, 6.29, 6.30)",
    "purge": "Purge Entities (clause 5.6.21, DELETE /entities)",
    "source-identity": "/info/sourceIdentity (clause 6.33)",
    "user-contexts": "user @context documents served by the kit's @context server",
    "registrations": "Context source registrations (clauses 4.3.6, 5.9, 5.10; 6.8, 6.9)",
    "csource-subscriptions": "Context source registration subscriptions (clauses 5.11; 6.12, 6.13)",
    "entity-maps": "Entity maps (clauses 6.32, 6.34)",
    "snapshots": "Snapshots (clauses 5.16, 5.5.15, 6.36-6.38)",
    "tenancy": "multi-tenancy (NGSILD-Tenant, clause 4.14); a broker may answer 501 NoMultiTenantSupport",
}

Probe = Callable[[httpx.Client, str], httpx.Response]


def _temporal(client: httpx.Client, probe_type: str) -> httpx.Response:
    params = {"type": probe_type, "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
    return client.get("/temporal/entities", params=params)


def _purge(client: httpx.Client, probe_type: str) -> httpx.Response:
    return client.delete("/entities", params={"type": probe_type})


def _entity_maps(client: httpx.Client, probe_type: str) -> httpx.Response:
    """GET /entityMaps?type= creates an EntityMap (6.34.3.1): delete it again."""
    response = client.get("/entityMaps", params={"type": probe_type})
    created = response.headers.get("NGSILD-EntityMap", "")
    if response.status_code == 201 and "/entityMaps/" in created:
        client.delete("/entityMaps/" + created.split("/entityMaps/", 1)[1])
    return response


def _snapshots(client: httpx.Client, probe_type: str) -> httpx.Response:
    """Purge Snapshots without its required q (5.16.7): refused (400) by a broker with snapshots, changes nothing."""
    return client.delete("/snapshots")


PROBES: dict[str, Probe] = {
    "temporal": _temporal,
    "subscriptions": lambda c, t: c.get("/subscriptions", params={"limit": "1"}),
    "jsonld-contexts": lambda c, t: c.get("/jsonldContexts"),
    "purge": _purge,
    "source-identity": lambda c, t: c.get("/info/sourceIdentity"),
    "registrations": lambda c, t: c.get("/csourceRegistrations", params={"type": t}),
    "csource-subscriptions": lambda c, t: c.get("/csourceSubscriptions", params={"limit": "1"}),
    "entity-maps": _entity_maps,
    "snapshots": _snapshots,
}


def offered(response: httpx.Response) -> bool:
    """The probes read collections (or purge an unused type, or map an unused type): a broker serving the resource
    never answers them 404, 405 or 501, except NonexistentTenant when the auditor's tenant holds nothing yet."""
    if response.status_code in (405, 501):
        return False
    if response.status_code == 404:
        return _problem_type(response).endswith("/NonexistentTenant")
    return True


def _problem_type(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("type", "")) if isinstance(body, dict) else ""


def detect(run: RunContext, declared_on: Iterable[str] = (), declared_off: Iterable[str] = ()) -> None:
    """Fill run.features with (present, why) for every known feature."""
    on, off = set(declared_on), set(declared_off)
    probe_type = f"ConfProbe{uuid.uuid4().hex[:8]}"
    headers = run.base_headers()
    with httpx.Client(base_url=run.broker.rstrip("/") + API, headers=headers, timeout=run.http_timeout) as client:
        for name, probe in PROBES.items():
            if name in on or name in off:
                continue
            try:
                response = probe(client, probe_type)
            except httpx.HTTPError as exc:
                run.features[name] = (False, f"probe failed: {exc!r}")
                continue
            state = offered(response)
            how = f"{response.request.method} {response.request.url.path} answered {response.status_code}"
            run.features[name] = (state, how)
    _local_features(run)
    for name in on:
        run.features[name] = (True, "declared by --with")
    for name in off:
        run.features[name] = (False, "declared by --without")


def _local_features(run: RunContext) -> None:
    subs = run.features.get("subscriptions", (False, ""))[0]
    if run.receiver is None:
        run.features["notifications"] = (False, "the kit's notification receiver is disabled")
    else:
        run.features["notifications"] = (subs, f"receiver at {run.receiver.base_url}; subscriptions: {_yes(subs)}")
    if run.mqtt is None:
        run.features["mqtt"] = (False, "no --mqtt URL given")
    else:
        run.features["mqtt"] = (subs, f"listening on {run.mqtt.prefix}/#; subscriptions: {_yes(subs)}")
    run.features["user-contexts"] = (run.contexts is not None, "the kit's @context server")
    run.features.setdefault("tenancy", (True, "assumed; a case answered 501 NoMultiTenantSupport turns it off"))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
