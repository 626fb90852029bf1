"""What the console page learns from the broker before it calls the API (record 0402)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from broker.auth.oidc import load_issuers
from broker.settings import Settings


@dataclass(frozen=True)
class SignIn:
    """An issuer the console can sign in with: authorization code with PKCE as the public client `client_id`."""

    issuer: str
    client_id: str
    audience: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class ConsoleConfig:
    auth_required: bool
    issuers: tuple[SignIn, ...]

    def json(self) -> bytes:
        return orjson.dumps(
            {
                "authRequired": self.auth_required,
                "issuers": [
                    {"issuer": i.issuer, "clientId": i.client_id, "audience": i.audience} for i in self.issuers
                ],
            }
        )


def console_config(settings: Settings) -> ConsoleConfig:
    return _config(settings.auth_required, settings.issuers)


@functools.lru_cache(maxsize=8)
def _config(auth_required: bool, issuers_file: str) -> ConsoleConfig:
    """Read once per issuers file (the broker read and checked it at start; it does not change under it)."""
    issuers = load_issuers(issuers_file) if issuers_file else []
    sign_ins = tuple(SignIn(i.issuer, i.console_client_id, i.audience[0]) for i in issuers if i.console_client_id)
    return ConsoleConfig(auth_required, sign_ins)
