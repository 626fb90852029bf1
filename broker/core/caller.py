"""Who is asking (ARCHITECTURE decision 9): every core operation receives one."""

from __future__ import annotations

from dataclasses import dataclass

from broker.store.base import DEFAULT_TENANT


@dataclass(frozen=True)
class Caller:
    tenant: str = DEFAULT_TENANT
    subject: str = "anonymous"
    roles: tuple[str, ...] = ("admin",)
