"""The authenticated identity of a request, before a tenant is chosen."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    subject: str
    roles: tuple[str, ...] = ()
    client: str | None = None
    groups: tuple[str, ...] = ()
    issuer: str | None = None
    #: The tenants an API key is restricted to (None: no restriction of its own; the access policies decide).
    tenants: tuple[str, ...] | None = None
    #: How the caller authenticated: "open" (no authentication configured), "token" or "key".
    method: str = "open"


#: Every request of the open mode (no authentication configured): the administrator, as before issue 18.
ANONYMOUS_ADMIN = Identity("anonymous", ("admin",))
#: Who reads a public resource (the OpenAPI document, a hosted @context) without credentials when they are needed.
ANONYMOUS = Identity("anonymous", (), method="anonymous")
