"""From a request's credentials to an Identity: the one decision of authentication (decision record 0201)."""

from __future__ import annotations

from collections.abc import Mapping

from broker.auth.apikeys import PREFIX, ApiKeys
from broker.auth.identity import ANONYMOUS, ANONYMOUS_ADMIN, Identity
from broker.auth.oidc import TokenVerifier, load_issuers
from broker.core.errors import Forbidden, Unauthenticated
from broker.settings import Settings
from broker.store.base import Store

#: The header of an API key (an API key is also taken as a bearer token, for clients that can send only that).
API_KEY_HEADER = "x-api-key"


class Authenticator:
    """In the open mode every request is the anonymous administrator and credentials are not looked at; else each
    request needs exactly one credential: `Authorization: Bearer <JWT or API key>` or `X-API-Key: <API key>`."""

    def __init__(self, required: bool, keys: ApiKeys, tokens: TokenVerifier | None = None) -> None:
        self.required = required
        self.keys = keys
        self.tokens = tokens

    @classmethod
    def build(cls, settings: Settings, store: Store) -> Authenticator:
        tokens = TokenVerifier(load_issuers(settings.issuers)) if settings.issuers else None
        return cls(settings.auth_required, ApiKeys(store), tokens)

    async def aclose(self) -> None:
        if self.tokens is not None:
            await self.tokens.aclose()

    def anonymous(self) -> Identity:
        """Who asks for a public resource without credentials: the administrator in the open mode, else nobody."""
        return ANONYMOUS_ADMIN if not self.required else ANONYMOUS

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        """The identity behind `headers` (lower-case names); Unauthenticated (401, or 400 for a malformed request)."""
        if not self.required:
            return ANONYMOUS_ADMIN
        authorization, api_key = headers.get("authorization"), headers.get(API_KEY_HEADER)
        if authorization is not None and api_key is not None:
            raise Unauthenticated("send one credential: Authorization or X-API-Key, not both", error="invalid_request")
        if api_key is not None:
            return await self.keys.verify(api_key.strip())
        if authorization is None:
            raise Unauthenticated("this broker needs a bearer token or an API key", error=None)
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential or " " in credential:
            raise Unauthenticated("Authorization must be 'Bearer <token>'", error="invalid_request")
        if credential.startswith(PREFIX):
            return await self.keys.verify(credential)
        if self.tokens is None:
            raise Unauthenticated("this broker accepts API keys only (no token issuer is configured)")
        return await self.tokens.verify(credential)


def check_tenant(identity: Identity, tenant: str) -> None:
    """An API key restricted to some tenants is refused in the others (403)."""
    if identity.tenants is not None and tenant not in identity.tenants:
        shown = repr(tenant) if tenant else "the default tenant"
        raise Forbidden(f"this API key is not valid in {shown}")
