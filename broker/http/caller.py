"""The one place a Caller is built (ARCHITECTURE decision 9, issue 18): the tenant of the request and the Identity
that broker.http.authn put in the scope."""

from __future__ import annotations

from starlette.requests import Request

from broker.auth.identity import Identity
from broker.core.caller import Caller
from broker.core.errors import Unauthenticated
from broker.http.authn import IDENTITY_KEY
from broker.http.negotiation import tenant_of

#: Where broker.http.snapshots.SnapshotScope puts the content tenant of the NGSILD-Snapshot header (5.5.15).
SNAPSHOT_TENANT_KEY = "agora.snapshot_tenant"


def identity_of(request: Request) -> Identity:
    identity = request.scope.get(IDENTITY_KEY)
    if not isinstance(identity, Identity):  # only a route mounted outside the middleware: refuse, never open
        raise Unauthenticated("the request was not authenticated", error=None)
    return identity


def caller_in(request: Request, tenant: str) -> Caller:
    """The caller of `request` acting in `tenant`."""
    who = identity_of(request)
    return Caller(tenant, who.subject, who.roles, who.client, who.groups, who.issuer)


def caller_of(request: Request) -> Caller:
    """The caller of `request` in its tenant: the NGSILD-Tenant header, or with NGSILD-Snapshot, the snapshot's
    content tenant (broker.http.snapshots.SnapshotScope, clause 5.5.15)."""
    scoped = request.scope.get(SNAPSHOT_TENANT_KEY)
    return caller_in(request, scoped if isinstance(scoped, str) else tenant_of(request))
