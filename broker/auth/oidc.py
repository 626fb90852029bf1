"""OpenID Connect bearer tokens (JWT, IETF RFC 7519 and 9068) verified with PyJWT: decision records 0201, 0202.

Each configured issuer (an issuers file, `AGORA_ISSUERS`) names its `issuer` URL and the `audience` the broker
answers to. Its signing keys are discovered from `<issuer>/.well-known/openid-configuration` (OpenID Connect
Discovery 1.0: the document's `issuer` must be the configured one, its `jwks_uri` gives the key set), kept in
memory, fetched again when a token names a key id that is not there (a rotation; at most once per
`refetch_interval` seconds per issuer, so unknown key ids cannot make the broker hammer the issuer) and when the
set is older than `max_key_age` seconds (keys withdrawn). A token is accepted when:

- its header's `alg` is an asymmetric algorithm the issuer accepts (RS256, ES256, EdDSA by default; `none` and the
  HMAC ones never: a shared secret would let anyone holding it mint tokens, and `none` is no signature);
- its `iss` is a configured issuer, its signature verifies with that issuer's key (by `kid`), its `aud` holds the
  configured audience, and `exp` (required), `nbf` and `iat` hold with `leeway` seconds of clock skew.

The identity: `sub`, roles and groups from configurable claims (a dotted path such as `realm_access.roles`; a
list, or a space-separated string like `scope`), the client from `azp` or `client_id`. A verified token is cached
(bounded, least recently used first out) until its `exp`, so that the hot path costs one dictionary look-up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import jwt

from broker.auth.identity import Identity
from broker.core.errors import HttpError, Unauthenticated
from broker.settings import is_loopback

#: The algorithms an issuer may be configured with: asymmetric only.
SUPPORTED: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})
DEFAULT_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")
#: The key type (and curve) each algorithm needs, so that a key of one kind is never used for another's tokens.
_KEY_KIND: Final = {"RS": ("RSA", None), "PS": ("RSA", None), "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384")}
_KEY_KIND_EDDSA: Final = ("OKP", None)
CACHE_SIZE: Final = 10_000


@dataclass(frozen=True)
class IssuerConfig:
    issuer: str
    audience: tuple[str, ...]
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    roles_claim: str = "roles"
    groups_claim: str = "groups"
    leeway: float = 30.0
    #: The key set's URL when the issuer publishes no discovery document (else discovered).
    jwks_uri: str | None = None
    refetch_interval: float = 30.0
    max_key_age: float = 3600.0
    #: The OAuth client id of the web console at this issuer (a public client: authorization code with PKCE,
    #: record 0402); empty: the console offers no sign-in with this issuer.
    console_client_id: str = ""

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> IssuerConfig:
        """From one entry of an issuers file; ValueError naming what is wrong."""
        unknown = set(doc) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown issuer setting(s): {', '.join(sorted(unknown))}")
        issuer, audience = doc.get("issuer"), doc.get("audience")
        if not isinstance(issuer, str) or not trusted_url(issuer):
            raise ValueError(f"issuer {issuer!r} is not an https URL (http only to a loopback address)")
        if "jwks_uri" in doc and not (isinstance(doc["jwks_uri"], str) and trusted_url(doc["jwks_uri"])):
            raise ValueError(f"issuer {issuer}: jwks_uri is not an https URL (http only to a loopback address)")
        if isinstance(audience, str):
            audience = [audience]
        if not isinstance(audience, list) or not audience or not all(isinstance(a, str) and a for a in audience):
            raise ValueError(f"issuer {issuer}: audience must be a string or a list of strings (it is required)")
        algorithms = tuple(doc.get("algorithms", DEFAULT_ALGORITHMS))
        refused = [a for a in algorithms if a not in SUPPORTED]
        if refused or not algorithms:
            raise ValueError(f"issuer {issuer}: algorithms {refused or '[]'} refused; asymmetric ones only")
        extra: dict[str, Any] = {
            k: doc[k] for k in ("roles_claim", "groups_claim", "jwks_uri", "console_client_id") if k in doc
        }
        extra.update({k: float(doc[k]) for k in ("leeway", "refetch_interval", "max_key_age") if k in doc})
        return cls(issuer, tuple(audience), algorithms, **extra)


def trusted_url(url: str) -> bool:
    """Whether keys may be fetched from `url`: over https, or over http from the machine itself (a local issuer,
    the tests): keys fetched in clear over a network could be replaced by anyone on the path."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname is not None and is_loopback(parts.hostname)


def load_issuers(path: str) -> list[IssuerConfig]:
    """The issuers of a JSON file: {"issuers": [{...}, ...]} or the list alone; ValueError when malformed."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"issuers file {path}: {exc}") from exc
    entries = doc.get("issuers") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"issuers file {path}: expected a non-empty list of issuer objects under 'issuers'")
    configs = [IssuerConfig.from_json(e) for e in entries]
    if len({c.issuer for c in configs}) != len(configs):
        raise ValueError(f"issuers file {path}: an issuer is listed twice")
    return configs


class IssuerUnavailable(HttpError):
    """503: the keys of an issuer cannot be fetched now (the broker cannot tell a good token from a bad one)."""

    def __init__(self, issuer: str, why: str) -> None:
        super().__init__(
            503,
            "Service Unavailable",
            f"the signing keys of {issuer} cannot be fetched now",
            headers={"Retry-After": "5"},
        )
        self.log_detail = f"issuer {issuer}: {why}"


@dataclass
class _KeySet:
    keys: list[tuple[dict[str, Any], jwt.PyJWK]] = field(default_factory=list)  # (the JWK as published, parsed)
    fetched_at: float = float("-inf")  # monotonic seconds of the last successful fetch
    tried_at: float = float("-inf")  # of the last attempt


class IssuerKeys:
    """The signing keys of one issuer, discovered, cached and fetched again as the module docstring says."""

    def __init__(self, config: IssuerConfig, client: httpx.AsyncClient) -> None:
        self.config = config
        self._client = client
        self._set = _KeySet()
        self._lock = asyncio.Lock()
        self.fetches = 0  # how often the key set was downloaded (tests, the log)

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        now = time.monotonic()
        may_fetch = now - self._set.tried_at >= self.config.refetch_interval
        if not self._set.keys and not may_fetch:
            raise IssuerUnavailable(self.config.issuer, "the last fetch of its keys failed")
        if now - self._set.fetched_at > self.config.max_key_age and may_fetch:
            await self._refresh(now, force=not self._set.keys)
            may_fetch = False
        key = self._find(kid, alg)
        if key is None and may_fetch:
            await self._refresh(now, force=False)  # a rotation: a key id not seen yet
            key = self._find(kid, alg)
        if key is None:
            raise Unauthenticated(f"no signing key {kid!r} for {alg} of issuer {self.config.issuer}")
        return key

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        fitting = [key for doc, key in self._set.keys if _fits(doc, alg)]
        if kid is None:
            return fitting[0] if len(fitting) == 1 else None
        return next((key for key in fitting if key.key_id == kid), None)

    async def _refresh(self, now: float, *, force: bool) -> None:
        """Fetch the key set (one fetch for a crowd of waiters). On failure the keys held stay; with none held,
        `force` makes the failure a 503."""
        async with self._lock:
            if self._set.tried_at >= now:
                return  # another request fetched meanwhile
            self._set.tried_at = time.monotonic()
            try:
                keys = await self._download()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                if force or not self._set.keys:
                    raise IssuerUnavailable(self.config.issuer, f"{type(exc).__name__}: {exc}") from None
                return
            self._set = _KeySet(keys, time.monotonic(), self._set.tried_at)
            self.fetches += 1

    async def _download(self) -> list[tuple[dict[str, Any], jwt.PyJWK]]:
        jwks_uri = self.config.jwks_uri or await self._discover()
        response = await self._client.get(jwks_uri)
        response.raise_for_status()
        keys = []
        for doc in response.json()["keys"]:
            if doc.get("use", "sig") != "sig":
                continue
            try:
                keys.append((doc, jwt.PyJWK(doc)))
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError):
                continue  # a key of a kind this broker does not use (or malformed): the others still count
        return keys

    async def _discover(self) -> str:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self._client.get(url)
        response.raise_for_status()
        doc = response.json()
        if doc.get("issuer") != self.config.issuer:  # OpenID Connect Discovery 1.0, clause 4.3
            raise ValueError(f"the discovery document names issuer {doc.get('issuer')!r}")
        jwks_uri = doc["jwks_uri"]
        if not isinstance(jwks_uri, str) or not trusted_url(jwks_uri):
            raise ValueError(f"jwks_uri {jwks_uri!r} is not an https URL (http only to a loopback address)")
        return jwks_uri


def _fits(jwk: Mapping[str, Any], alg: str) -> bool:
    """Whether a JWK may verify a token of `alg`: its own `alg` when it says one, and its type and curve."""
    if jwk.get("alg", alg) != alg:
        return False
    kty, crv = _KEY_KIND_EDDSA if alg == "EdDSA" else _KEY_KIND.get(alg, _KEY_KIND.get(alg[:2], ("", None)))
    return jwk.get("kty") == kty and (crv is None or jwk.get("crv") == crv)


def claim(claims: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """The strings at a dotted claim path: a list of them, or one string of space-separated values."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


# What a token that cannot be read or verified may raise on its way through PyJWT and the key parsers.
_BAD_TOKEN = (jwt.PyJWTError, ValueError, TypeError, KeyError, UnicodeError, OverflowError)


class TokenVerifier:
    """Bearer JWTs of the configured issuers to Identities, with the cache of verified tokens."""

    def __init__(self, issuers: Sequence[IssuerConfig], client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self.issuers = {c.issuer: IssuerKeys(c, self._client) for c in issuers}
        self._verified: OrderedDict[str, tuple[float, Identity]] = OrderedDict()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def verify(self, token: str) -> Identity:
        cached = self._verified.get(token)
        if cached is not None and cached[0] > time.time():
            self._verified.move_to_end(token)
            return cached[1]
        expires, identity = await self._verify(token)
        self._verified[token] = (expires, identity)
        while len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    async def _verify(self, token: str) -> tuple[float, Identity]:
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            unverified = jwt.decode(token, options={"verify_signature": False})
        except _BAD_TOKEN as exc:
            raise Unauthenticated("the bearer token is not a well-formed JWT", log_detail=str(exc)) from None
        if alg not in SUPPORTED:
            raise Unauthenticated(f"the token's algorithm {alg!r} is not accepted (asymmetric signatures only)")
        iss = unverified.get("iss")
        keys = self.issuers.get(iss) if isinstance(iss, str) else None
        if keys is None:
            raise Unauthenticated("the token's issuer is not one this broker accepts")
        config = keys.config
        if alg not in config.algorithms:
            raise Unauthenticated(f"issuer {config.issuer} is not accepted with algorithm {alg}")
        kid = header.get("kid")
        key = await keys.key_for(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=list(config.audience),
                issuer=config.issuer,
                leeway=config.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is not meant for this broker (aud)") from None
        except _BAD_TOKEN as exc:
            raise Unauthenticated("the token is not valid", log_detail=f"{type(exc).__name__}: {exc}") from None
        return float(claims["exp"]) + config.leeway, identity_of(claims, config)


def identity_of(claims: Mapping[str, Any], config: IssuerConfig) -> Identity:
    client = claims.get("azp", claims.get("client_id"))
    return Identity(
        subject=str(claims["sub"]),
        roles=claim(claims, config.roles_claim),
        client=client if isinstance(client, str) else None,
        groups=claim(claims, config.groups_claim),
        issuer=config.issuer,
        method="token",
    )
