"""Who is asking (ARCHITECTURE decision 9): every core operation receives one."""

from __future__ import annotations

from dataclasses import dataclass

from broker.store.base import DEFAULT_TENANT


@dataclass(frozen=True)
class Caller:
    """The tenant a request acts in and the identity behind it. With no security configured (the open loopback
    mode) every request is the anonymous administrator; the authentication layer fills the other members."""

    tenant: str = DEFAULT_TENANT
    subject: str = "anonymous"
    roles: tuple[str, ...] = ("admin",)
    client: str | None = None  # the OAuth client (azp/client_id claim) or the API key's name
    groups: tuple[str, ...] = ()  # the group claim of the token, as the issuer wrote it
    issuer: str | None = None  # the token's iss, or None for an API key or the open mode
